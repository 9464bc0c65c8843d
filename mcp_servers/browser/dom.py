"""In-page helpers shared by the site modules, and the text comparison used for exactly-once checks.

Reading a chat list or a conversation element by element would cost one round trip per field; these
helpers let one ``page.evaluate`` read it all, applying the selectors file's fallback lists the same way
``selectors.locate`` does (the first selector that matches wins).
"""
from __future__ import annotations

import re
import unicodedata

_HELPERS = r"""
  const pick = (root, sels) => {
    for (const css of sels || []) {
      let nodes;
      try { nodes = root.querySelectorAll(css); } catch (e) { continue; }
      if (nodes.length) return {css, nodes: Array.from(nodes)};
    }
    return {css: null, nodes: []};
  };
  const first = (root, sels) => pick(root, sels).nodes[0] || null;
  const every = (root, sels) => {
    const out = [];
    for (const css of sels || []) { try { out.push(...root.querySelectorAll(css)); } catch (e) {} }
    return out;
  };
  const within = (el, sels) => (sels || []).some((css) => {
    try { return el.matches(css) || el.querySelector(css) !== null; } catch (e) { return false; }
  });
  const BLOCK = new Set(["P", "DIV", "LI", "BR", "TR"]);
  const textOf = (el) => {
    if (!el) return null;
    let out = "";
    const walk = (node) => {
      for (const child of node.childNodes) {
        if (child.nodeType === 3) out += child.nodeValue;
        else if (child.nodeType === 1) {
          if (child.tagName === "IMG") out += child.getAttribute("alt") || "";
          else if (child.tagName === "BR") out += "\n";
          else if (BLOCK.has(child.tagName)) {
            if (out && !out.endsWith("\n")) out += "\n";
            walk(child);
            out += "\n";
          } else walk(child);
        }
      }
    };
    walk(el);
    return out.trim();
  };
  const attrOf = (el, names) => {
    for (const name of names || []) {
      if (el.hasAttribute(name)) return el.getAttribute(name);
      const inner = el.querySelector(`[${name}]`);
      if (inner) return inner.getAttribute(name);
      const outer = el.closest(`[${name}]`);
      if (outer) return outer.getAttribute(name);
    }
    return null;
  };
"""


def script(body: str) -> str:
    """A page function ``(arg) => {...}`` with the helpers above in scope."""
    return "(arg) => {" + _HELPERS + body + "}"


_INVISIBLE = dict.fromkeys(map(ord, "\u200b\u200c\u200d\u2060\ufeff"), None)
_MARKUP = re.compile(r"[*_~`]")  # WhatsApp renders *bold* _italic_ ~strike~ ```mono``` without the marks


def comparable(text: str | None) -> str:
    """What two renderings of one message have in common: NFC, no invisible characters, no formatting
    marks, whitespace collapsed. Used only to recognise a message already sent, never to alter one."""
    text = unicodedata.normalize("NFC", text or "").translate(_INVISIBLE)
    return " ".join(_MARKUP.sub("", text).split())


def same_text(a: str | None, b: str | None) -> bool:
    return comparable(a) == comparable(b)
