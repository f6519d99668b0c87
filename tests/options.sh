#!/usr/bin/env bash
# The tools' options are the same everywhere they are listed: the
# getopt tables in tools/*.c and the common options' table in
# tools/ps_cli.c, the usage synopsis and the option list of
# --help, the man page (OPTIONS, and SYNOPSIS where it lists options)
# and the README synopsis. Options with a fixed set of values written
# A|B|C (--compress lz4|zlib|none, ...) list the same values everywhere,
# and those the code accepts. docs/PROTOCOL.md gives the codec ids the
# code accepts. (Issue 10: the help's synopsis said
# [--compress none|zlib] while lz4 was the default.)
. "$top_srcdir/tests/lib.sh"
command -v python3 >/dev/null || skip "python3 is not installed"

for t in ps-sensor ps-receiver; do
  "$top_builddir/tools/$t" --help >"$WORK/$t.help" || fail "$t --help"
done
python3 - "$top_srcdir" "$WORK" <<'EOF' || exit 1
import re, sys

top, work = sys.argv[1], sys.argv[2]
failed = 0


def fail(msg):
    global failed
    failed += 1
    print("FAIL: " + msg, file=sys.stderr)


def read(path):
    with open(path, encoding="utf-8") as f:
        return f.read()


def options_of_source(tool):
    """Long options, short-to-long map, short-only options and the
    strings the code compares each option's value with. The tool's own
    options are its longopts[] and shortopts[]; the common ones (TLS,
    -Z, -q, ...) are the rows of the table in tools/ps_cli.c that name
    the tool, which ps_cli_getopt_init appends to them."""
    src = read("%s/tools/%s.c" % (top, tool))
    table = re.search(r"longopts\[\] = \{(.*?)\{NULL, 0, NULL, 0\}", src, re.S)
    longs, short_to_long, enum_to_long = set(), {}, {}
    for name, val in re.findall(
            r'\{"([a-z0-9-]+)",\s*\w+_argument,\s*NULL,\s*([^}]+?)\}',
            table.group(1)):
        longs.add(name)
        val = val.strip()
        if val.startswith("'"):
            short_to_long[val[1]] = name
        else:
            enum_to_long[val] = name
    optstring = re.search(r'static const char shortopts\[\] = "([^"]*)";',
                          src).group(1)
    bit = {"ps-sensor": "S", "ps-receiver": "R"}[tool]
    macro = {"S": "PS_CLI_SENSOR", "R": "PS_CLI_RECEIVER"}[bit]
    if not re.search(r"ps_cli_getopt_init\([^;]*\b%s\b" % macro, src):
        fail("%s.c does not build its options as %s" % (tool, macro))
    cli = read("%s/tools/ps_cli.c" % top)
    common = re.search(r"ps__cli_opts\[\] = \{(.*?)\n\};", cli, re.S)
    rows = re.findall(r'\{"([a-z0-9-]+)",\s*(0|\'.\'),\s*(\w+)_argument,'
                      r'\s*([SR](?:\s*\|\s*[SR])*),', common.group(1))
    if len(rows) != common.group(1).count('{"'):
        fail("tools/ps_cli.c: %d common options, %d rows read" %
             (common.group(1).count('{"'), len(rows)))
    for name, letter, arg, tools in rows:
        if bit not in re.findall(r"[SR]", tools):
            continue
        if name in longs:
            fail("%s: --%s is both its own and a common option" %
                 (tool, name))
        longs.add(name)
        if letter != "0":
            short_to_long[letter[1]] = name
            optstring += letter[1] + (":" if arg == "required" else "")
    shorts = set(re.findall(r"[A-Za-z]", optstring))
    short_only = shorts - set(short_to_long)
    # Values compared in each option's case: strcmp(optarg, "...").
    values = {}
    for label, body in re.findall(r"case ([A-Z_]+|'.'):\n(.*?)break;", src,
                                  re.S):
        vals = re.findall(r'strcmp\(optarg, "([^"]+)"\)', body)
        if not vals:
            continue
        name = (short_to_long.get(label[1]) if label.startswith("'")
                else enum_to_long.get(label))
        values[name] = set(vals)
    return longs, short_to_long, short_only, values


def canon(tokens, short_to_long, short_only, where):
    out = set()
    for tok in tokens:
        if tok.startswith("--"):
            out.add(tok[2:])
        elif tok[1] in short_to_long:
            out.add(short_to_long[tok[1]])
        elif tok[1] in short_only:
            out.add("-" + tok[1])
        else:
            fail("%s: -%s is no option" % (where, tok[1]))
    return out - {"help", "version"}


TOKEN = r"(?<![\w-])(--[a-z][a-z0-9-]*|-[A-Za-z](?![\w-]))"
CHOICE = (r"(?<![\w-])(--[a-z][a-z0-9-]*|-[A-Za-z])[ =]+"
          r"([a-z0-9-]+(?:\|[a-z0-9-]+)+)(?![\w|-])")


def choices(text, s2l):
    out = {}
    for opt, vals in re.findall(CHOICE, text):
        name = opt[2:] if opt.startswith("--") else s2l.get(opt[1], opt)
        out[name] = set(vals.split("|"))
    return out


def man_text(s):
    """Man source to plain text: italics become upper case (placeholders,
    as in --help), other fonts and quotes go."""
    s = s.replace("\\-", "-").replace("\\&", "")
    s = re.sub(r"\\fI(.*?)\\f[PR]", lambda m: m.group(1).upper(), s)
    s = re.sub(r"\\f[BIRP]", "", s)
    s = re.sub(r"^\.[A-Z]+ ?", "", s, flags=re.M)
    return s.replace('"', "")


def man_join_synopsis(s):
    # .RB [ \-\-listen / .IR file ] ... one word per line: join them.
    return re.sub(r"\s*\|\s*", "|", " ".join(s.split()))


for tool in ("ps-sensor", "ps-receiver"):
    longs, s2l, short_only, values = options_of_source(tool)
    code = longs | {"-" + c for c in short_only}
    code -= {"help", "version"}
    sets, texts = {}, {}

    help_text = read("%s/%s.help" % (work, tool))
    usage = help_text.split("\n\n")[0]
    texts["--help synopsis"] = usage
    sets["--help synopsis"] = canon(re.findall(TOKEN, usage), s2l,
                                    short_only, tool + " --help synopsis")
    heads = [re.split(r"(?<=\S) {2,}", ln.strip(), maxsplit=1)[0]
             for ln in help_text.splitlines() if re.match(r"^ {2,6}-", ln)]
    texts["--help options"] = "\n".join(heads)
    sets["--help options"] = canon(re.findall(TOKEN, "\n".join(heads)), s2l,
                                   short_only, tool + " --help options")

    man = read("%s/docs/man/%s.1" % (top, tool))
    sect = re.search(r"^\.SH OPTIONS\n(.*?)^\.SH ", man, re.S | re.M).group(1)
    tags = man_text("\n".join(re.findall(r"^\.TP\n(.*)$", sect, re.M)))
    texts["man OPTIONS"] = tags
    sets["man OPTIONS"] = canon(re.findall(TOKEN, tags), s2l, short_only,
                                tool + "(1) OPTIONS")
    syn = re.search(r"^\.SH SYNOPSIS\n(.*?)^\.SH ", man, re.S | re.M).group(1)
    if "options" not in syn:
        syn = man_join_synopsis(man_text(syn))
        texts["man SYNOPSIS"] = syn
        sets["man SYNOPSIS"] = canon(re.findall(TOKEN, syn), s2l, short_only,
                                     tool + "(1) SYNOPSIS")

    readme = read(top + "/README.md")
    block = re.search(r"```sh\n(%s .*?)```" % tool, readme, re.S)
    if block is None:
        fail("README.md has no synopsis of %s" % tool)
    else:
        texts["README synopsis"] = block.group(1)
        sets["README synopsis"] = canon(re.findall(TOKEN, block.group(1)),
                                        s2l, short_only, "README " + tool)

    for where, got in sets.items():
        missing, extra = code - got, got - code
        bad = failed
        if missing:
            fail("%s: %s lacks %s" % (tool, where, " ".join(sorted(missing))))
        if extra:
            fail("%s: %s has %s, which %s.c does not take" %
                 (tool, where, " ".join(sorted(extra)), tool))
        if failed == bad:
            print("ok: %s: %s lists the %d options of the code" %
                  (tool, where, len(code)))

    # Fixed sets of values.
    found = {w: choices(t, s2l) for w, t in texts.items()}
    for opt, vals in sorted(values.items()):
        bad = failed
        for where, ch in found.items():
            if opt not in ch:
                fail("%s: %s does not list the values of --%s (%s)" %
                     (tool, where, opt, "|".join(sorted(vals))))
            elif ch[opt] != vals:
                fail("%s: %s gives --%s %s; the code takes %s" %
                     (tool, where, opt, "|".join(sorted(ch[opt])),
                      "|".join(sorted(vals))))
        if failed == bad:
            print("ok: %s: --%s %s everywhere" %
                  (tool, opt, "|".join(sorted(vals))))

# The wire codec ids: those lib/ps_proto.h defines, and PROTOCOL.md.
proto_h = read(top + "/lib/ps_proto.h")
wmax = int(re.search(r"#define PS_WIRE_CODEC_MAX (\d+)", proto_h).group(1))
doc = read(top + "/docs/PROTOCOL.md")
ids = [int(i) for i in re.findall(r"^\| (\d+)\s+\| (?:stored|zlib|lz4)", doc,
                                  re.M)]
if ids != list(range(wmax + 1)):
    fail("PROTOCOL.md §6 lists codec ids %s, the code 0..%d" % (ids, wmax))
row = re.search(r"^\| Codec id\s+\| (\S+)", doc, re.M)
if row is None or row.group(1) != "0..%d" % wmax:
    fail("PROTOCOL.md limits: codec id %s, the code 0..%d" %
         (row.group(1) if row else "missing", wmax))
chk = re.search(r"^\* `codec` ≤ (\d+)", doc, re.M)
if chk is None or int(chk.group(1)) != wmax:
    fail("PROTOCOL.md BATCH checks: codec ≤ %s, the code %d" %
         (chk.group(1) if chk else "missing", wmax))
if not failed:
    print("ok: PROTOCOL.md gives codec ids 0..%d, as the code" % wmax)
sys.exit(1 if failed else 0)
EOF
ok "options agree"
