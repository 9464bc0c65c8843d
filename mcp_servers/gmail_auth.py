"""One-time Gmail sign-in: ``python -m mcp_servers.gmail_auth``.

Runs Google's installed-app OAuth flow on a loopback port and stores the token as JSON (mode 0600)
at ``GMAIL_TOKEN_FILE``, where the connector picks it up without a restart.
"""
from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Mapping, Sequence

from mcp_servers.gmail import SCOPES, GmailConfig, save_token

EXIT_NOT_CONFIGURED = 2


def main(argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mcp_servers.gmail_auth", description=__doc__.splitlines()[0])
    parser.add_argument("--open-browser", action="store_true", help="open the consent page in a local browser")
    args = parser.parse_args(argv)
    config = GmailConfig.from_env(os.environ if environ is None else environ)

    if not config.credentials_file.is_file():
        print(
            f"Gmail OAuth client file not found: {config.credentials_file}\n"
            "Create an OAuth client ID of type 'Desktop app' in Google Cloud Console "
            "(APIs & Services > Credentials), enable the Gmail API, download the JSON and either save it "
            "as credentials.json here or set GMAIL_CREDENTIALS_FILE to its path. Then run this command again.",
            file=sys.stderr,
        )
        return EXIT_NOT_CONFIGURED

    # Imported late: the flow pulls in requests-oauthlib, which the missing-file path does not need.
    from google_auth_oauthlib.flow import InstalledAppFlow

    try:
        flow = InstalledAppFlow.from_client_secrets_file(str(config.credentials_file), list(SCOPES))
    except ValueError as err:
        print(f"{config.credentials_file} is not a Google OAuth client file ({err}).", file=sys.stderr)
        return EXIT_NOT_CONFIGURED

    print("Signing in to Gmail (scopes: gmail.modify, gmail.send).")
    credentials = flow.run_local_server(
        host="127.0.0.1",
        port=0,
        open_browser=args.open_browser,
        authorization_prompt_message="Open this URL in a browser on this machine and allow access:\n{url}\n",
        success_message="Gmail access granted. You can close this tab and return to the terminal.",
    )
    save_token(config.token_file, credentials)
    print(f"Saved the Gmail token to {config.token_file} (readable by you only). Gmail is ready.")
    return 0


if __name__ == "__main__":
    from dotenv import find_dotenv, load_dotenv

    load_dotenv(find_dotenv(usecwd=True), override=False)
    sys.exit(main())
