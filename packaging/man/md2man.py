#!/usr/bin/env python3
"""packaging/man/md2man.py - a roff man page from one of our Markdown docs.

Used for mxfleet.json(5) from docs/config.md, so the man page says exactly
what the reference (and the test that checks it against the loader) says.
Covers the Markdown the docs use: headings (# title, ## section, ###
subsection, #### label), paragraphs, '-' lists, fenced code, tables (kept as
preformatted lines), `code`, **bold** and [text](link).

usage: md2man.py --name NAME --section N --version V IN.md OUT
"""
import argparse
import re
import sys


def esc(text):
    """Escape roff specials in running text."""
    text = text.replace("\\", "\\e").replace("-", "\\-")
    return text


def inline(text):
    text = esc(text)
    text = re.sub(r"\[([^\]]+)\]\([^)]+\)", r"\1", text)
    text = re.sub(r"\*\*([^*]+)\*\*", r"\\fB\1\\fR", text)
    text = re.sub(r"`([^`]+)`", r"\\fB\1\\fR", text)
    return text


def line_start(text):
    """A line may not start with '.' or a quote (roff requests)."""
    return "\\&" + text if text[:1] in (".", "'") else text


def convert(md, name, section, version):
    out = ['.TH "%s" "%s" "" "mxfleet %s" "mxfleet"' % (name.upper(), section, version)]
    out += [".SH NAME", "%s \\- the mxfleet configuration file" % esc(name)]
    in_code = False
    in_table = False
    for raw in md.splitlines():
        line = raw.rstrip()
        if line.startswith("```"):
            if in_code:
                out += [".fi", ".RE"]
            else:
                out += [".RS 4", ".nf"]
            in_code = not in_code
            continue
        if in_code:
            out.append(line_start(esc(line)))
            continue
        if line.startswith("|"):
            if not in_table:
                out += [".RS 4", ".nf"]
                in_table = True
            if not re.match(r"^\|[-| :]+\|$", line):
                cells = [c.strip() for c in line.strip("|").split("|")]
                out.append(line_start(inline("  ".join(cells))))
            continue
        if in_table:
            out += [".fi", ".RE"]
            in_table = False
        if line.startswith("#### "):
            out += [".PP", "\\fI%s\\fR" % inline(line[5:]), ".br"]
        elif line.startswith("### "):
            out += [".SS %s" % inline(line[4:])]
        elif line.startswith("## "):
            out += [".SH %s" % inline(line[3:]).upper()]
        elif line.startswith("# "):
            out += [".SH DESCRIPTION"]
        elif line.startswith("- "):
            out += [".IP \\(bu 2", line_start(inline(line[2:]))]
        elif line == "":
            out.append(".PP")
        else:
            out.append(line_start(inline(line.strip())))
    if in_code or in_table:
        out += [".fi", ".RE"]
    out += [".SH SEE ALSO", "\\fBmxfleet\\fR(1), \\fBmxfleet\\-agent\\fR(8)"]
    # collapse runs of paragraph breaks the blank lines left
    text = "\n".join(out) + "\n"
    text = re.sub(r"(\.PP\n)+(\.(SH|SS|PP|IP)\b)", r"\2", text)
    return re.sub(r"(\.PP\n)+", ".PP\n", text)


def main():
    ap = argparse.ArgumentParser(description="Markdown doc to a man page")
    ap.add_argument("--name", required=True)
    ap.add_argument("--section", required=True)
    ap.add_argument("--version", required=True)
    ap.add_argument("src")
    ap.add_argument("dst")
    a = ap.parse_args()
    with open(a.src, encoding="utf-8") as f:
        md = f.read()
    with open(a.dst, "w", encoding="utf-8") as f:
        f.write(convert(md, a.name, a.section, a.version))
    return 0


if __name__ == "__main__":
    sys.exit(main())
