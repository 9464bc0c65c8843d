"""The public voice: the X connector and the Meta (Facebook Page, Instagram) Graph API connector."""
