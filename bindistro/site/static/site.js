// bindistro feed viewer: search and device check over the static JSON API (api/v1). No framework,
// no build step; the shard hash and the device check are the same as bindistro/site/api.py and
// bindistro/device_check.py compute.
"use strict";
var bindistro = (function () {
  function shard(key, digits) {   // FNV-1a 32-bit of the UTF-8 bytes, its low `digits` hex digits
    var h = 0x811c9dc5, bytes = new TextEncoder().encode(key);
    digits = digits || 2;
    for (var i = 0; i < bytes.length; i++) { h ^= bytes[i]; h = Math.imul(h, 0x01000193) >>> 0; }
    return ("0000" + (h & ((1 << 4 * digits) - 1)).toString(16)).slice(-digits);
  }
  function letter(name) { var c = name.charAt(0).toLowerCase(); return /^[a-z0-9]$/.test(c) ? c : "_"; }
  function get(url) {
    return fetch(url).then(function (r) { return r.ok ? r.json() : null; }).catch(function () { return null; });
  }
  function el(tag, text, attrs) {
    var e = document.createElement(tag); if (text !== undefined) e.textContent = text;
    for (var k in (attrs || {})) e.setAttribute(k, attrs[k]); return e;
  }
  function pageName(n) { return /^[A-Za-z0-9][A-Za-z0-9._+-]*$/.test(n) && n.length <= 200; }
  function pkgLink(n) { return pageName(n) ? el("a", n, {href: "packages/" + n + ".html"}) : el("span", n); }
  function table(head, rows) {
    var t = el("table"), tr = el("tr");
    head.forEach(function (h) { tr.appendChild(el("th", h)); }); t.appendChild(tr);
    rows.forEach(function (r) {
      var tr = el("tr");
      r.forEach(function (c) { var td = el("td"); if (c instanceof Node) td.appendChild(c); else td.textContent = c; tr.appendChild(td); });
      t.appendChild(tr);
    });
    return t;
  }

  // --- search ----------------------------------------------------------------------------------
  function search(api, root) {
    var q = new URLSearchParams(location.search).get("q") || "", out = document.getElementById("results");
    document.getElementById("q").value = q;
    q = q.trim(); if (!q) return;
    var t0 = performance.now(), jobs = [], sections = [];
    // how many hex digits each sharded lookup uses (it grows with the distro)
    var digits = get(api + "index.json").then(function (i) { return i ? i.shards : {files: 2, basenames: 2, provides: 2}; });
    if (/^CVE-\d{4}-\d{4,}$/i.test(q)) {
      var id = q.toUpperCase();
      jobs.push(get(api + "cves.json").then(function (all) {      // known ids first: no 404 for others
        return all && all.cves[id] ? get(api + "cves/" + id + ".json") : null;
      }).then(function (d) {
        if (d) sections.push(["CVE " + id, table(["release", "package", "version", "status"], d.findings.map(function (f) {
          return [f.release, pkgLink(f["package"]), f.version, f.status.replace("_", " ")];
        })), d.findings.length]);
      }));
    } else {
      var base = q.slice(q.lastIndexOf("/") + 1);
      function fileRow(p, e) { return [p, pkgLink(e[0]), e[2], e[3] + " (" + e[4] + ")", e[5] + " (" + (e[6] || "current") + ")"]; }
      var fileHead = ["path", "package", "feed", "first shipped", "last shipped"];
      if (q.indexOf("/") >= 0) {          // a path: the shard of the whole path
        jobs.push(digits.then(function (dg) { return get(api + "files/" + shard(q, dg.files) + ".json"); }).then(function (d) {
          var hit = d && d.entries[q];
          if (hit) sections.push(["files", table(fileHead, hit.map(function (e) { return fileRow(q, e); })), hit.length]);
        }));
      } else if (base) {                  // a file name: the shard of the name
        jobs.push(digits.then(function (dg) { return get(api + "basenames/" + shard(base, dg.basenames) + ".json"); }).then(function (d) {
          var hit = d && d.entries[base];
          if (hit) sections.push(["files named " + base + (hit.total > hit.rows.length ? " (first " + hit.rows.length + ")" : ""),
            table(fileHead, hit.rows.map(function (e) { return fileRow(e[0], e.slice(1)); })), hit.total]);
        }));
      }
      if (q.charAt(0) !== "/") {
        jobs.push(digits.then(function (dg) { return get(api + "provides/" + shard(q, dg.provides) + ".json"); }).then(function (d) {
          var hit = d && d.entries[q];
          if (hit) sections.push(["provides " + q, table(["package", "format"], hit.map(function (e) { return [pkgLink(e[0]), e[1]]; })), hit.length]);
        }));
        jobs.push(get(api + "names/" + letter(q) + ".json").then(function (d) {
          if (!d) return;
          var names = Object.keys(d.entries).filter(function (n) { return n.toLowerCase().indexOf(q.toLowerCase()) === 0; });
          var exact = names.indexOf(q) >= 0 ? get(api + "packages/" + q + ".json") : Promise.resolve(null);
          return exact.then(function (p) {
            if (p) sections.unshift(["every version of " + q, table(["version", "format", "arch", "first", "last", ""], p.versions.map(function (v) {
              return [v.version, v.format, v.arch, v.first, v.last || "current", el("a", "download", {href: root + v.path})];
            })), p.versions.length]);
            if (names.length) sections.push(["package names", table(["package", "newest version", "summary"], names.slice(0, 200).map(function (n) {
              return [pkgLink(n), d.entries[n][0], d.entries[n][1]];
            })), names.length]);
          });
        }));
      }
    }
    Promise.all(jobs).then(function () {
      out.textContent = "";
      if (!sections.length) out.appendChild(el("p", "Nothing found for " + q + "."));
      sections.forEach(function (s) { out.appendChild(el("h2", s[0] + " (" + s[2] + ")")); out.appendChild(s[1]); });
      out.appendChild(el("p", "searched in " + Math.round(performance.now() - t0) + " ms", {"class": "hint", id: "timing"}));
    });
  }

  // --- device check: the same rules as `bindistro device check` ----------------------------------
  function parseManifest(text) {
    var lines = text.split("\n"), pkgs = [];
    if (/^Package:/m.test(text)) {
      var kind = /^Installed-Time:/m.test(text) ? "opkg-status" : "dpkg-status";
      text.split(/\n\s*\n/).forEach(function (st) {
        var f = {};
        st.split("\n").forEach(function (l) { var m = /^([A-Za-z-]+):\s*(.*)$/.exec(l); if (m) f[m[1]] = m[2]; });
        if (f.Package && f.Version && (!f.Status || / installed$/.test(f.Status))) pkgs.push([f.Package, f.Version, f.Architecture || ""]);
      });
      return {kind: kind, format: kind === "opkg-status" ? "ipk" : "deb", packages: pkgs};
    }
    var kind2 = null;
    for (var i = 0; i < lines.length; i++) {
      var w = lines[i].trim().split(/\s+/); if (!lines[i].trim()) continue;
      var k = w.length === 2 ? "aktualizr" : w.length === 3 && /^(\(none\)|\d+):.+-/.test(w[1]) ? "rpm-qa" : w.length === 3 ? "oe-manifest" : null;
      if (!k || (kind2 && k !== kind2)) throw new Error("line " + (i + 1) + ": not a line of a known manifest format: " + lines[i].slice(0, 80));
      kind2 = k;
      if (k === "aktualizr") pkgs.push([w[0], w[1], ""]);
      else if (k === "oe-manifest") pkgs.push([w[0], w[2], w[1]]);
      else { var ev = w[1].split(":"), e = ev.shift(), vr = ev.join(":"); pkgs.push([w[0], (e === "(none)" || e === "0") ? vr : e + ":" + vr, w[2]]); }
    }
    if (!kind2) throw new Error("line 1: empty manifest");
    return {kind: kind2, format: kind2 === "rpm-qa" ? "rpm" : null, packages: pkgs};
  }
  function shippedIn(entries, i) {
    var out = {};
    Object.keys(entries).forEach(function (n) {
      entries[n].forEach(function (v) { v[2].forEach(function (r) { if (r[0] <= i && i <= r[1]) out[n] = v[0]; }); });
    });
    return out;
  }
  function device(api) {
    var input = document.getElementById("manifest"), out = document.getElementById("device");
    input.addEventListener("change", function () {
      var file = input.files[0]; if (!file) return;
      file.text().then(function (text) {
        var m;
        try { m = parseManifest(text); } catch (e) { out.textContent = file.name + ": " + e.message; return; }
        get(api + "index.json").then(function (index) {
          var fmts = m.format ? [m.format] : index.formats;
          return Promise.all(fmts.map(function (f) { return get(api + "versions/" + f + ".json"); })).then(function (docs) {
            var best = null;
            docs.forEach(function (d) {
              if (!d) return;
              for (var i = 0; i < d.releases.length; i++) {
                var s = shippedIn(d.packages, i), score = 0;
                m.packages.forEach(function (p) { if (s[p[0]] === p[1]) score++; });
                if (!best || score > best.score || (score === best.score && i > best.i)) best = {score: score, doc: d, i: i, shipped: s};
              }
            });
            report(out, m, best, index);
          });
        });
      });
    });
  }
  function report(out, m, best, index) {
    out.textContent = "";
    if (!best) { out.appendChild(el("p", "No release data.")); return; }
    var d = best.doc, latest = shippedIn(d.packages, d.releases.length - 1), res = {newer: [], older: [], absent: [], foreign: [], unpublished: [], upgrades: []};
    m.packages.forEach(function (p) {
      var n = p[0], v = p[1], known = d.packages[n];
      if (!known) { res.foreign.push([n, v]); return; }
      if (!known.some(function (x) { return x[0] === v; })) res.unpublished.push([n, v]);
      var s = best.shipped[n];
      if (s === undefined) res.absent.push([n, v]);
      else if (s !== v) res[vercmp(v, s) > 0 ? "newer" : "older"].push([n, v, s]);
      if (latest[n] !== undefined && vercmp(latest[n], v) > 0) res.upgrades.push([n, v, latest[n]]);
    });
    var exact = !res.newer.length && !res.older.length && !res.absent.length && !res.foreign.length && !res.unpublished.length;
    var rel = d.releases[best.i];
    out.appendChild(el("p", m.kind + ", " + m.packages.length + " packages, " + d.format + ": " + (exact ? "exactly " : "closest to ")
      + "release " + rel + ", " + res.upgrades.length + " upgrades available", {id: "verdict", "class": exact ? "ok" : "bad"}));
    [["upgrades", "upgrades available from " + d.releases[d.releases.length - 1], ["package", "installed", "latest"]],
     ["newer", "newer than release " + rel, ["package", "installed", "in release"]],
     ["older", "older than release " + rel, ["package", "installed", "in release"]],
     ["absent", "not in release " + rel, ["package", "installed"]],
     ["foreign", "not from this distribution", ["package", "installed"]],
     ["unpublished", "versions no release published (the device cannot be reproduced)", ["package", "installed"]]].forEach(function (s) {
      if (!res[s[0]].length) return;
      out.appendChild(el("h2", s[1] + " (" + res[s[0]].length + ")", {id: s[0]}));
      out.appendChild(table(s[2], res[s[0]].map(function (r) { return [pkgLink(r[0])].concat(r.slice(1)); })));
    });
  }
  // version order: dpkg's algorithm (opkg and rpm order the versions OE writes the same way)
  function vercmp(a, b) {
    function split(v) { var e = 0, i = v.indexOf(":"); if (i >= 0) { e = parseInt(v.slice(0, i), 10) || 0; v = v.slice(i + 1); }
      var j = v.lastIndexOf("-"); return [e, j >= 0 ? v.slice(0, j) : v, j >= 0 ? v.slice(j + 1) : ""]; }
    function order(c) { return c === "~" ? -1 : /\d/.test(c) ? 0 : !c ? 0 : /[A-Za-z]/.test(c) ? c.charCodeAt(0) : c.charCodeAt(0) + 256; }
    function part(x, y) {
      var i = 0, j = 0;
      while (i < x.length || j < y.length) {
        var diff = 0;
        while ((i < x.length && !/\d/.test(x[i])) || (j < y.length && !/\d/.test(y[j]))) {
          var ac = order(x[i] || ""), bc = order(y[j] || ""); if (ac !== bc) return ac - bc; i++; j++;
        }
        while (x[i] === "0") i++; while (y[j] === "0") j++;
        while (i < x.length && /\d/.test(x[i]) && j < y.length && /\d/.test(y[j])) { if (!diff) diff = x.charCodeAt(i) - y.charCodeAt(j); i++; j++; }
        if (i < x.length && /\d/.test(x[i])) return 1; if (j < y.length && /\d/.test(y[j])) return -1; if (diff) return diff;
      }
      return 0;
    }
    var A = split(a), B = split(b);
    return A[0] - B[0] || part(A[1], B[1]) || part(A[2], B[2]);
  }
  return {search: search, device: device, shard: shard, parseManifest: parseManifest, vercmp: vercmp};
})();
