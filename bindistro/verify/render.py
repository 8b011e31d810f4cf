"""Report renderings: self-contained HTML and JUnit XML (for CI such as the Yocto autobuilder)."""
from __future__ import annotations

import html
from xml.etree import ElementTree as ET

CSS = """body{font-family:system-ui,sans-serif;margin:2em;color:#222}h1{font-size:1.4em}
table{border-collapse:collapse;width:100%}td,th{border:1px solid #ccc;padding:4px 8px;text-align:left;vertical-align:top}
th{background:#f3f3f3}.error{background:#fde2e2}.warning{background:#fff4d6}.info{background:#eef5ff}
.waived{opacity:.6}.pill{display:inline-block;padding:2px 10px;border-radius:10px;margin-right:6px;background:#eee}"""


def to_html(rep: dict, title: str = "bindistro verify") -> str:
    s = rep["summary"]
    rows = []
    order = {"error": 0, "warning": 1, "info": 2}
    for f in sorted(rep["findings"], key=lambda f: (order[f["severity"]], f["gate"], f["subject"])):
        cls = f["severity"] + (" waived" if f.get("waived") else "")
        waived = f" (waived: {html.escape(f['waived']['reason'])})" if f.get("waived") else ""
        rows.append(f"<tr class='{cls}'><td>{f['severity']}</td><td>{html.escape(f['gate'])}</td>"
                    f"<td>{html.escape(f['subject'])}</td><td>{html.escape(f['message'])}{waived}</td>"
                    f"<td><code>{f['id']}</code></td></tr>")
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title><style>{CSS}</style></head>
<body><h1>{html.escape(title)}: candidate {rep['candidate']}</h1>
<p>verified {html.escape(rep['created'])}; gates: {html.escape(', '.join(rep['gates']))}</p>
<p><span class="pill error">errors {s['error']}</span><span class="pill warning">warnings {s['warning']}</span>
<span class="pill info">info {s['info']}</span><span class="pill">waived {s['waived']}</span></p>
<table><thead><tr><th>severity</th><th>gate</th><th>subject</th><th>message</th><th>id</th></tr></thead>
<tbody>{''.join(rows)}</tbody></table></body></html>
"""


def to_junit(rep: dict) -> str:
    suites = ET.Element("testsuites", name=f"bindistro verify candidate {rep['candidate']}")
    for gate in rep["gates"]:
        fs = [f for f in rep["findings"] if f["gate"] == gate and f["severity"] in ("error", "warning")]
        errors = [f for f in fs if f["severity"] == "error" and not f.get("waived")]
        suite = ET.SubElement(suites, "testsuite", name=gate, tests=str(max(1, len(fs))), failures=str(len(errors)))
        if not fs:
            ET.SubElement(suite, "testcase", classname=gate, name="no findings")
        for f in fs:
            case = ET.SubElement(suite, "testcase", classname=gate, name=f"{f['subject']} [{f['id']}]")
            if f in errors:
                ET.SubElement(case, "failure", message=f["message"], type="error").text = f["message"]
            elif f.get("waived"):
                ET.SubElement(case, "skipped", message=f"waived: {f['waived']['reason']}")
            else:
                ET.SubElement(case, "system-out").text = f"warning: {f['message']}"
    return ET.tostring(suites, encoding="unicode", xml_declaration=True) + "\n"
