//! A [`Walkthrough`] as one self-contained HTML page: inline CSS and JavaScript, the
//! steps embedded as JSON, nothing fetched from anywhere, so the file opens offline.
//!
//! The page has Previous and Next buttons (ids `prev`, `next`; the arrow keys do the
//! same; `page.html#7` opens at step 7), a step counter (id `step`, "step 2 of 5"), and one section per part of the
//! story, with stable ids: `bits` (the address split into fields), `tlb` (the lookup and
//! every TLB's entries, the one used or filled marked `touched`), `walk` (the page walk
//! level by level), `fault` (the fault and what the kernel did), `frames` (physical
//! memory) and `swap` (the swap slots).
//!
//! Everything from the data reaches the page as text (the script builds the page with
//! `textContent`, never markup), and the embedded JSON has `<`, `>` and `&` escaped, so
//! no value can end the script element or inject markup.

use super::Walkthrough;

/// Escapes text for HTML element content and attribute values.
pub fn escape_html(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Makes JSON text safe inside a `<script>` element: the characters that could end the
/// element or start markup, and the line separators older JavaScript rejects, become
/// `\u` escapes (which JSON reads back as the same characters; they only occur inside
/// strings).
pub fn escape_json_for_script(json: &str) -> String {
    let mut out = String::with_capacity(json.len());
    for c in json.chars() {
        match c {
            '<' => out.push_str("\\u003c"),
            '>' => out.push_str("\\u003e"),
            '&' => out.push_str("\\u0026"),
            '\u{2028}' => out.push_str("\\u2028"),
            '\u{2029}' => out.push_str("\\u2029"),
            c => out.push(c),
        }
    }
    out
}

/// The page for `w`.
pub fn page(w: &Walkthrough) -> Result<String, serde_json::Error> {
    let json = escape_json_for_script(&serde_json::to_string(w)?);
    let title = escape_html(&w.title);
    // Put together piece by piece, so no value is ever searched for a placeholder.
    let mut out = String::with_capacity(json.len() + HEAD.len() + BODY.len() + 16_384);
    out.push_str(HEAD);
    out.push_str(&title);
    out.push_str("</title>\n<style>");
    out.push_str(CSS);
    out.push_str("</style>\n</head>\n<body>\n<header>\n<h1 id=\"title\">");
    out.push_str(&title);
    out.push_str("</h1>");
    out.push_str(BODY);
    out.push_str("<script type=\"application/json\" id=\"walkthrough\">");
    out.push_str(&json);
    out.push_str("</script>\n<script>");
    out.push_str(JS);
    out.push_str("</script>\n</body>\n</html>\n");
    Ok(out)
}

const HEAD: &str = r#"<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>"#;

const BODY: &str = r#"
<p id="machine"></p>
<nav>
<button id="prev" type="button" title="previous step (left arrow)">&#8592; Previous</button>
<span id="step">step 0 of 0</span>
<button id="next" type="button" title="next step (right arrow)">Next &#8594;</button>
<span id="label"></span>
</nav>
<p id="outcome"></p>
</header>
<main>
<section id="bits"><h2>Address bits</h2><div class="body"></div></section>
<section id="tlb"><h2>TLB</h2><div class="body"></div></section>
<section id="walk"><h2>Page walk</h2><div class="body"></div></section>
<section id="fault"><h2>Fault</h2><div class="body"></div></section>
<section id="frames"><h2>Physical frames</h2><div class="body"></div></section>
<section id="swap"><h2>Swap</h2><div class="body"></div></section>
</main>
<noscript>This page needs JavaScript to step through the translations.</noscript>
"#;

const CSS: &str = r#"
body { font-family: system-ui, sans-serif; margin: 0; color: #222; background: #fafafa; }
header { position: sticky; top: 0; background: #fff; border-bottom: 1px solid #ccc; padding: 0.5em 1em; z-index: 1; }
h1 { font-size: 1.2em; margin: 0.2em 0; }
h2 { font-size: 1.05em; margin: 0 0 0.4em 0; }
h3 { font-size: 0.95em; margin: 0.6em 0 0.2em 0; }
#machine, #outcome { margin: 0.2em 0; color: #555; }
#outcome { color: #222; font-weight: 600; }
nav { display: flex; gap: 0.8em; align-items: center; flex-wrap: wrap; }
nav button { font-size: 1em; padding: 0.3em 0.9em; }
#step { font-weight: 600; min-width: 8em; text-align: center; }
#label { font-family: ui-monospace, monospace; }
main { display: grid; grid-template-columns: repeat(auto-fit, minmax(34em, 1fr)); gap: 0.8em; padding: 0.8em; }
section { background: #fff; border: 1px solid #ddd; border-radius: 6px; padding: 0.6em 0.8em; overflow-x: auto; }
table { border-collapse: collapse; font-family: ui-monospace, monospace; font-size: 0.85em; }
th, td { border: 1px solid #ddd; padding: 0.1em 0.4em; text-align: left; }
th { background: #f0f0f0; }
.mono { font-family: ui-monospace, monospace; }
.muted { color: #777; }
.bitrow { display: flex; flex-wrap: wrap; font-family: ui-monospace, monospace; margin: 0.3em 0; }
.field { display: inline-flex; flex-direction: column; margin-right: 3px; border-radius: 3px; padding: 1px 2px; }
.field .bits { letter-spacing: 1px; }
.field .name { font-size: 0.75em; text-align: center; }
.f0 { background: #e3f2fd; } .f1 { background: #fff3e0; } .f2 { background: #e8f5e9; }
.f3 { background: #fce4ec; } .f4 { background: #ede7f6; } .f5 { background: #fffde7; }
.f6 { background: #e0f7fa; } .offset { background: #eeeeee; } .sign { background: #f5f5f5; color: #999; }
tr.touched td { background: #ffe082; font-weight: 700; }
tr.touched.hit td { background: #a5d6a7; }
.hit-word { color: #2e7d32; font-weight: 600; } .miss-word { color: #c62828; font-weight: 600; }
.frames { display: grid; grid-template-columns: repeat(auto-fill, minmax(9em, 1fr)); gap: 3px; }
.frame { border: 1px solid #ccc; border-radius: 3px; padding: 2px 4px; font-size: 0.75em; font-family: ui-monospace, monospace; overflow: hidden; }
.frame .pfn { font-weight: 700; }
.k-free { background: #fff; color: #999; } .k-reserved { background: #eee; color: #888; }
.k-kernel { background: #d7ccc8; } .k-zero { background: #cfd8dc; } .k-table { background: #bbdefb; }
.k-anon { background: #c8e6c9; } .k-file { background: #ffe0b2; } .k-shm { background: #e1bee7; } .k-page { background: #c8e6c9; }
.frame.current { outline: 3px solid #d32f2f; }
.fault-yes { color: #c62828; font-weight: 600; } .fault-no { color: #2e7d32; }
ul { margin: 0.2em 0; padding-left: 1.2em; }
"#;

const JS: &str = r#"
(function () {
  'use strict';
  var W = JSON.parse(document.getElementById('walkthrough').textContent);
  var cur = 0;

  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) { e.className = cls; }
    if (text !== undefined && text !== null) { e.textContent = String(text); }
    return e;
  }
  function table(head, rows) {
    var t = el('table'), tr = el('tr');
    head.forEach(function (h) { tr.appendChild(el('th', null, h)); });
    t.appendChild(tr);
    rows.forEach(function (r) {
      var row = el('tr', r.cls || null);
      r.cells.forEach(function (c) { row.appendChild(el('td', null, c === null || c === undefined ? '' : c)); });
      t.appendChild(row);
    });
    return t;
  }
  function body(id) {
    var b = document.querySelector('#' + id + ' .body');
    while (b.firstChild) { b.removeChild(b.firstChild); }
    return b;
  }
  function p(parent, text, cls) { var e = el('p', cls, text); parent.appendChild(e); return e; }

  function renderBits(s) {
    var b = body('bits'), a = s.bits;
    p(b, 'virtual address ' + a.va + ' (' + a.va_bits + '-bit addresses, ' + a.page_shift + ' offset bits)', 'mono');
    var row = el('div', 'bitrow'), n = 0;
    a.fields.forEach(function (f) {
      var cls = f.name === 'offset' ? 'offset' : (f.name === 'sign' ? 'sign' : 'f' + (n++ % 7));
      var box = el('span', 'field ' + cls);
      box.title = f.name + ': bits ' + f.hi + '..' + f.lo + ' = ' + f.value;
      box.appendChild(el('span', 'bits', f.binary));
      box.appendChild(el('span', 'name', f.name + ' ' + f.value));
      row.appendChild(box);
    });
    b.appendChild(row);
    b.appendChild(table(['field', 'bits', 'binary', 'value'], a.fields.map(function (f) {
      return { cells: [f.name, f.hi + '..' + f.lo, f.binary, f.value] };
    })));
    p(b, 'VPN ' + a.vpn + '   VPO ' + a.vpo, 'mono');
    if (a.tlb_name) {
      p(b, a.tlb_name + ': the low ' + a.tlb_set_bits + ' bits of the VPN pick set ' + a.tlb_set + '; the rest is the tag ' + a.tlb_tag, 'mono');
    }
  }

  function renderTlb(s) {
    var b = body('tlb');
    s.attempts.forEach(function (at, i) {
      if (s.attempts.length > 1) { b.appendChild(el('h3', null, 'Lookup ' + (i + 1))); }
      if (at.probes.length === 0 && at.notes.length === 0) { p(b, 'no TLB was probed', 'muted'); }
      var ul = el('ul');
      at.probes.forEach(function (pr) {
        var li = el('li', 'mono');
        li.appendChild(document.createTextNode(pr.tlb + ' ' + pr.array + ': VPN ' + pr.vpn + ' -> set ' + pr.set + ', tag ' + pr.tag + ': '));
        li.appendChild(pr.way === null ? el('span', 'miss-word', 'miss') : el('span', 'hit-word', 'hit in way ' + pr.way));
        ul.appendChild(li);
      });
      at.notes.filter(function (n) { return n.indexOf('walk cache') !== 0 && n.indexOf('data cache') !== 0; })
        .forEach(function (n) { ul.appendChild(el('li', 'mono', n)); });
      b.appendChild(ul);
    });
    var snap = W.tlb_snapshots[s.tlbs];
    snap.tlbs.forEach(function (t) {
      b.appendChild(el('h3', null, t.name + ' (level ' + t.level + ', ' + t.holds + ')'));
      t.arrays.forEach(function (arr) {
        var valid = arr.entries.length + arr.not_shown;
        p(b, arr.name + ': ' + arr.sets + ' sets x ' + arr.ways + ' ways, pages of ' + arr.page_sizes.join(', ') + '; ' + valid + ' valid', 'muted');
        if (arr.entries.length === 0) { return; }
        b.appendChild(table(['set', 'way', 'VPN', 'PPN', 'page', 'ASID', 'perms', ''], arr.entries.map(function (e) {
          var touch = s.touched.filter(function (x) {
            return x.tlb === t.name && x.array === arr.name && x.set === e.set && x.way === e.way;
          })[0];
          return {
            cls: touch ? 'touched ' + touch.how : null,
            cells: [e.set, e.way, e.vpn, e.ppn, e.page_size, e.asid === null ? 'global' : e.asid, e.perms, touch ? touch.how : '']
          };
        })));
        if (arr.not_shown > 0) { p(b, arr.not_shown + ' more entries not shown', 'muted'); }
      });
    });
  }

  function renderWalk(s) {
    var b = body('walk');
    s.attempts.forEach(function (at, i) {
      b.appendChild(el('h3', null, 'Translation ' + (i + 1) + (at.tlb_hit ? ' (TLB hit)' : '')));
      if (at.walk.length === 0) {
        p(b, at.tlb_hit ? 'no walk: the TLB had the translation' : 'no page-table entry was read', 'muted');
      } else {
        b.appendChild(table(['level', 'table', 'index', 'PTE address', 'raw value', 'kind', 'frame', 'flags', 'A/D set'], at.walk.map(function (w) {
          return { cells: [w.level, w.table, w.index, w.pte_addr, w.raw, w.kind, w.pfn, w.flags, w.updated] };
        })));
      }
      var notes = at.notes.filter(function (n) { return n.indexOf('walk cache') === 0 || n.indexOf('data cache') === 0; });
      if (notes.length) {
        var ul = el('ul');
        notes.forEach(function (n) { ul.appendChild(el('li', 'mono', n)); });
        b.appendChild(ul);
      }
      p(b, at.result, 'mono');
    });
  }

  function renderFault(s) {
    var b = body('fault');
    if (!s.page_fault) { p(b, 'No page fault.', 'fault-no'); }
    s.attempts.forEach(function (at, i) {
      if (!at.fault) { return; }
      p(b, 'Translation ' + (i + 1) + ': page fault: ' + at.fault, 'fault-yes');
      if (at.kernel) { p(b, at.kernel.text + ' [' + at.kernel.class + ']'); }
    });
    p(b, 'Outcome: ' + s.outcome);
    if (s.pid !== null) { p(b, 'process ' + s.pid, 'muted'); }
  }

  function renderFrames(s) {
    var b = body('frames'), f = W.frame_snapshots[s.frames];
    p(b, f.nr_frames + ' frames (from the ' + f.source + '): ' + f.counts.map(function (c) { return c.n + ' ' + c.kind; }).join(', '), 'muted');
    var grid = el('div', 'frames');
    f.frames.forEach(function (fr) {
      var cell = el('div', 'frame k-' + fr.kind + (fr.pfn === s.ppn ? ' current' : ''));
      cell.title = 'frame ' + fr.pfn + ': ' + fr.what + (fr.refs !== null ? ' (' + fr.refs + ' refs)' : '');
      cell.appendChild(el('div', 'pfn', fr.pfn + ' ' + fr.kind));
      cell.appendChild(el('div', null, fr.what));
      grid.appendChild(cell);
    });
    b.appendChild(grid);
    if (f.not_shown > 0) { p(b, f.not_shown + ' more frames not shown', 'muted'); }
  }

  function renderSwap(s) {
    var b = body('swap');
    if (s.swap === null) { p(b, 'No swap on this machine.', 'muted'); return; }
    var w = W.swap_snapshots[s.swap];
    p(b, w.used + ' of ' + w.slots + ' slots in use', 'muted');
    if (w.entries.length) {
      b.appendChild(table(['slot', 'holds', 'refs', 'swap cache frame'], w.entries.map(function (e) {
        return { cells: [e.slot, e.owners, e.refs, e.cached] };
      })));
    }
    if (w.not_shown > 0) { p(b, w.not_shown + ' more slots not shown', 'muted'); }
  }

  function render() {
    var n = W.steps.length;
    document.getElementById('machine').textContent = 'machine ' + W.machine + ': ' + W.machine_summary;
    document.getElementById('step').textContent = n ? 'step ' + (cur + 1) + ' of ' + n : 'no steps';
    document.getElementById('prev').disabled = cur <= 0;
    document.getElementById('next').disabled = cur >= n - 1;
    if (!n) { return; }
    var s = W.steps[cur];
    document.getElementById('label').textContent = s.label + ' (' + s.access + ')';
    document.getElementById('outcome').textContent = s.outcome;
    renderBits(s); renderTlb(s); renderWalk(s); renderFault(s); renderFrames(s); renderSwap(s);
  }
  function go(d) {
    var next = Math.max(0, Math.min(W.steps.length - 1, cur + d));
    if (next !== cur) {
      cur = next;
      render();
      try { window.history.replaceState(null, '', '#' + (cur + 1)); } catch (e) { /* not allowed here */ }
    }
  }
  document.getElementById('prev').addEventListener('click', function () { go(-1); });
  document.getElementById('next').addEventListener('click', function () { go(1); });
  document.addEventListener('keydown', function (e) {
    if (e.key === 'ArrowRight' || e.key === 'ArrowDown') { go(1); e.preventDefault(); }
    if (e.key === 'ArrowLeft' || e.key === 'ArrowUp') { go(-1); e.preventDefault(); }
  });
  // `page.html#7` opens at step 7; the address follows the step shown.
  var m = /^#(\d+)$/.exec(window.location.hash);
  if (m) { cur = Math.max(0, Math.min(W.steps.length - 1, parseInt(m[1], 10) - 1)); }
  window.addEventListener('hashchange', function () {
    var h = /^#(\d+)$/.exec(window.location.hash);
    if (h) { var n = parseInt(h[1], 10) - 1; if (n !== cur) { go(n - cur); } }
  });
  render();
})();
"#;
