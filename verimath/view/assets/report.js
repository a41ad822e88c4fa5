/* verimath view: renders the embedded run data (inline in every report.html).
 * Every string from the data is put on the page with textContent (document.createTextNode via
 * Element.append); nothing from the data is ever parsed as HTML. Only the rows on screen are built.
 */
"use strict";
(function () {
  const PAGE = 50;
  const UNJUDGED = "could not judge";

  // ------------------------------------------------------------------ DOM helpers
  function el(tag, attrs, ...kids) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v == null || v === false) continue;
      if (k === "class") e.className = v;
      else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
      else e.setAttribute(k, v === true ? "" : String(v));
    }
    for (const k of kids.flat(Infinity)) {
      if (k == null || k === false) continue;
      e.append(k instanceof Node ? k : String(k));
    }
    return e;
  }
  const svgNS = "http://www.w3.org/2000/svg";
  function sv(tag, attrs, ...kids) {
    const e = document.createElementNS(svgNS, tag);
    for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, String(v));
    for (const k of kids) e.append(k instanceof Node ? k : String(k));
    return e;
  }
  const pct = (x) => (x == null || Number.isNaN(x) ? "n/a" : (100 * x).toFixed(1) + "%");
  const sgn = (x) => (x == null ? "n/a" : (x >= 0 ? "+" : "") + (100 * x).toFixed(1));
  const ci = (c) => (c && c[0] != null ? `[${pct(c[0])}, ${pct(c[1])}]` : "");
  const short = (s, n) => { s = s == null ? "" : String(s); return s.length > n ? s.slice(0, n) + "…" : s; };
  const kv = (rows) => el("table", { class: "kv" },
    rows.filter((r) => r[1] != null && r[1] !== "").map(([k, v]) => el("tr", {}, el("th", {}, k), el("td", {}, v))));
  const card = (label, value, cls) => el("div", { class: "card" + (cls ? " " + cls : "") }, el("b", {}, value), label);
  const json = (o) => JSON.stringify(o, null, 2);
  function badgeClass(status, correct) {
    if (correct === null) return "unjudged";
    return status;
  }
  const badge = (status, correct, extra) =>
    el("span", { class: "badge " + badgeClass(status, correct), "data-status": status }, status + (extra || ""));

  // ------------------------------------------------------------------ syntax highlighting
  const KW = {
    python: "and|as|assert|break|class|continue|def|del|elif|else|except|False|finally|for|from|global|if|import|in|is|lambda|None|nonlocal|not|or|pass|print|raise|return|True|try|while|with|yield",
    lean: "theorem|lemma|example|def|by|have|show|from|exact|intro|intros|apply|simp|simp_all|linarith|nlinarith|norm_num|ring|ring_nf|field_simp|calc|fun|rw|rwa|cases|rcases|obtain|induction|use|constructor|refine|omega|decide|sorry|at|with|let|in|open|import|namespace|end|variable|where|match|if|then|else|positivity|aesop|tauto|exact_mod_cast|push_cast|interval_cases|all_goals|any_goals|first|try|repeat|unfold|subst|specialize|contradiction|exfalso|by_contra|norm_cast|gcongr|bound|polyrith",
  };
  const RX = {};
  function rx(lang) {
    if (!RX[lang]) {
      const com = lang === "lean" ? "--[^\\n]*|/-[\\s\\S]*?-/" : "#[^\\n]*";
      const str = lang === "lean" ? '"(?:\\\\.|[^"\\\\])*"'
        : "\"\"\"[\\s\\S]*?\"\"\"|'''[\\s\\S]*?'''|\"(?:\\\\.|[^\"\\\\\\n])*\"|'(?:\\\\.|[^'\\\\\\n])*'";
      RX[lang] = new RegExp(`(${com})|(${str})|\\b(\\d+(?:\\.\\d+)?)\\b|\\b(${KW[lang]})\\b`, "g");
    }
    return RX[lang];
  }
  function highlight(code, lang) {
    const out = el("pre", { class: "code", "data-lang": lang || "" });
    if (!KW[lang]) { out.append(code); return out; }
    const re = rx(lang); re.lastIndex = 0;
    let last = 0, m;
    while ((m = re.exec(code)) !== null) {
      if (m.index > last) out.append(code.slice(last, m.index));
      const cls = m[1] ? "tok-com" : m[2] ? "tok-str" : m[3] ? "tok-num" : "tok-kw";
      out.append(el("span", { class: cls }, m[0]));
      last = m.index + m[0].length;
      if (m[0].length === 0) re.lastIndex++;
    }
    if (last < code.length) out.append(code.slice(last));
    return out;
  }
  const LANG = { python: "python", py: "python", python3: "python", lean: "lean", lean4: "lean" };
  const TOOL_LANGS = new Set(["output", "text", "stdout"]);
  // model text with ``` fences: prose, highlighted code cells, tool-output cells
  function renderText(text) {
    const frag = [];
    const re = /```([\w+-]*)[^\n]*\n?([\s\S]*?)(?:```|$)/g;
    let last = 0, m;
    text = text == null ? "" : String(text);
    while ((m = re.exec(text)) !== null) {
      if (m.index > last) frag.push(el("pre", { class: "prose" }, text.slice(last, m.index)));
      const lang = (m[1] || "").toLowerCase();
      if (TOOL_LANGS.has(lang)) frag.push(el("pre", { class: "tool" }, m[2]));
      else frag.push(highlight(m[2], LANG[lang] || (lang ? lang : "python")));
      last = m.index + m[0].length;
      if (m[0].length === 0) re.lastIndex++;
    }
    if (last < text.length) frag.push(el("pre", { class: "prose" }, text.slice(last)));
    return frag;
  }

  // ------------------------------------------------------------------ data
  async function loadData() {
    const gz = document.getElementById("vm-data-gz");
    if (gz) {
      const bin = atob(gz.textContent.trim());
      const bytes = new Uint8Array(bin.length);
      for (let i = 0; i < bin.length; i++) bytes[i] = bin.charCodeAt(i);
      const stream = new Blob([bytes]).stream().pipeThrough(new DecompressionStream("gzip"));
      return JSON.parse(await new Response(stream).text());
    }
    return JSON.parse(document.getElementById("vm-data").textContent);
  }
  // per-problem derived fields, computed once
  function prepare(problems) {
    problems.forEach((p, i) => {
      p._i = i;
      let c = 0, j = 0, tok = 0, nt = 0;
      const st = {};
      for (const a of p.at) {
        st[a.s] = (st[a.s] || 0) + 1;
        if (a.c !== null && a.c !== undefined) { j++; if (a.c) c++; }
        if (a.k != null) { tok += a.k; nt++; }
      }
      p._c = c; p._j = j; p._st = st; p._tok = nt ? tok / nt : null;
      p._acc = j ? c / j : null;
      p._unj = p.at.some((a) => a.c === null || a.c === undefined);
      p._hay = [p.id, p.q, p.g, ...p.at.map((a) => a.a)].filter((x) => x != null).join("\n").toLowerCase();
    });
  }

  // ------------------------------------------------------------------ header
  function damagedNote(D) {
    return (D.damaged || []).length ? el("p", { class: "warn", id: "vm-damaged" },
      `${D.damaged.length} damaged line(s) left out (a write cut short; a resume redoes them): `,
      short(D.damaged.join("; "), 400)) : null;
  }
  function runHeader(run, title) {
    const iso = run.isolation;
    const isoText = iso ? (String(iso).startsWith("bwrap") ? iso : iso + " (FALLBACK)") : null;
    const created = run.created_unix ? new Date(run.created_unix * 1000).toISOString().replace(".000", "") : null;
    return [
      el("h1", {}, title),
      el("div", { class: "muted small" }, run.path),
      kv([["job", run.job], ["model", run.model], ["benchmark", run.benchmark],
        ["split", run.split], ["strategy / mode", run.strategy || run.mode], ["samples per problem (n)", run.n],
        ["temperature", run.temperature], ["grader version", run.grader_version],
        ["sandbox isolation", isoText], ["prompt hash", run.prompt_hash],
        ["Lean", run.lean ? `${run.lean.toolchain} / Mathlib ${run.lean.mathlib_rev}` : null],
        ["audit version", run.audit_version], ["git revision", run.git_revision], ["created", created],
        ["benchmark source", run.benchmark_source], ["bad input records", run.n_bad_records || null],
        ["damaged record lines", run.damaged_record_lines ? run.damaged_record_lines.join(", ") : null]]),
      Object.keys(run.packages || {}).length
        ? el("details", {}, el("summary", {}, "package versions"),
          kv(Object.entries(run.packages)))
        : null,
    ];
  }

  // ------------------------------------------------------------------ charts
  function barChart(items) { // items: [{label, value, ci}]
    const W = Math.max(260, 70 * items.length + 50), H = 180, x0 = 36, top = 10, h = 140;
    const svg = sv("svg", { width: W, height: H, role: "img", class: "chart" });
    for (const t of [0, 0.25, 0.5, 0.75, 1]) {
      const y = top + h * (1 - t);
      svg.append(sv("line", { x1: x0, x2: W - 5, y1: y, y2: y, stroke: "#e3e7ee" }));
      svg.append(sv("text", { x: 2, y: y + 4 }, `${100 * t}%`));
    }
    items.forEach((it, i) => {
      const x = x0 + 10 + i * 70, v = it.value == null ? 0 : it.value;
      svg.append(sv("rect", { x, y: top + h * (1 - v), width: 44, height: h * v, fill: "#4c72b0" }));
      svg.append(sv("text", { x: x + 4, y: top + h * (1 - v) - 3 }, pct(it.value)));
      svg.append(sv("text", { x, y: H - 8 }, it.label));
      if (it.ci && it.ci[0] != null) {
        const cx = x + 22, y1 = top + h * (1 - it.ci[0]), y2 = top + h * (1 - it.ci[1]);
        svg.append(sv("line", { x1: cx, x2: cx, y1, y2, stroke: "#111" }));
        svg.append(sv("line", { x1: cx - 5, x2: cx + 5, y1, y2: y1, stroke: "#111" }));
        svg.append(sv("line", { x1: cx - 5, x2: cx + 5, y1: y2, y2, stroke: "#111" }));
      }
    });
    return svg;
  }
  function lineChart(points) { // points: [{x, y, ci}] y in [0,1]
    const W = 420, H = 200, x0 = 40, top = 10, h = 150, w = W - x0 - 20;
    const svg = sv("svg", { width: W, height: H, role: "img", class: "chart" });
    const ymax = Math.min(1, Math.max(0.05, ...points.map((p) => (p.ci && p.ci[1] != null ? p.ci[1] : p.y || 0))) * 1.15);
    const X = (i) => x0 + (points.length > 1 ? (w * i) / (points.length - 1) : w / 2);
    const Y = (v) => top + h * (1 - v / ymax);
    for (let t = 0; t <= 4; t++) {
      const v = (ymax * t) / 4;
      svg.append(sv("line", { x1: x0, x2: W - 10, y1: Y(v), y2: Y(v), stroke: "#e3e7ee" }));
      svg.append(sv("text", { x: 2, y: Y(v) + 4 }, `${(100 * v).toFixed(1)}%`));
    }
    let d = "";
    points.forEach((p, i) => {
      svg.append(sv("text", { x: X(i) - 4, y: H - 10 }, String(p.x)));
      if (p.y == null) return;
      d += (d ? " L " : "M ") + X(i) + " " + Y(p.y);
      if (p.ci && p.ci[0] != null) svg.append(sv("line", { x1: X(i), x2: X(i), y1: Y(p.ci[0]), y2: Y(p.ci[1]), stroke: "#111" }));
      svg.append(sv("circle", { cx: X(i), cy: Y(p.y), r: 4, fill: "#4c72b0" }));
    });
    if (d) svg.insertBefore(sv("path", { d, fill: "none", stroke: "#4c72b0", "stroke-width": 2 }), svg.firstChild);
    return svg;
  }

  // ------------------------------------------------------------------ summaries
  function statusCounts(problems) {
    const n = {};
    for (const p of problems) for (const [s, c] of Object.entries(p._st)) n[s] = (n[s] || 0) + c;
    return n;
  }
  function evalSummary(D) {
    const s = D.summary || {}, probs = D.problems;
    const sc = statusCounts(probs);
    const out = [el("h2", {}, "Summary")];
    if (!s.n_problems && s.n_problems !== 0) out.push(el("p", { class: "warn" }, "summary.json is missing (the run did not finish); numbers below are counted from the records"));
    if (s.n_judged === 0 || s.nothing_judged) out.push(el("p", { class: "loud" }, "NOTHING WAS JUDGED: no accuracy, pass@k or maj@k can be reported"));
    const acc = D.kind === "eval" ? s.accuracy : (s["pass@k"] || {})["1"];
    const accCi = D.kind === "eval" ? s.accuracy_ci95 : (s["pass@k_ci95"] || {})["1"];
    out.push(el("div", { class: "cards", id: "vm-cards" },
      card(D.kind === "eval" ? "accuracy " + ci(accCi) + " (95% Wilson)" : "pass@1 " + ci(accCi), pct(acc)),
      card("problems", s.n_problems != null ? s.n_problems : probs.length),
      D.kind === "prove" ? card("solved", s.n_solved) : null,
      card("samples", s.n_samples != null ? s.n_samples : s.n_attempts),
      card("judged", s.n_judged),
      ...Object.entries(sc).sort((a, b) => b[1] - a[1]).map(([k, v]) => card(k, v, "st-" + k)),
      s.n_bad_gold ? card("bad gold (excluded)", s.n_bad_gold) : null,
      card(UNJUDGED + " (excluded)", s.n_infra_failures != null ? s.n_infra_failures : 0),
      probs.some((p) => p.pv) ? card("provisional (awaiting retry)", probs.filter((p) => p.pv).length) : null));
    const unj = s.unjudged || {};
    if (Object.keys(unj).length) out.push(el("div", {}, el("b", {}, UNJUDGED + " by reason: "),
      Object.entries(unj).map(([k, v]) => el("span", { class: "badge unjudged" }, `${k}: ${v}`))));
    const items = [];
    for (const [k, v] of Object.entries(s["pass@k"] || {})) items.push({ label: "pass@" + k, value: v, ci: (s["pass@k_ci95"] || {})[k] });
    for (const [k, v] of Object.entries(s["maj@k"] || {})) if (k !== "1") items.push({ label: "maj@" + k, value: v, ci: (s["maj@k_ci95"] || {})[k] });
    if (items.length) {
      out.push(el("div", { class: "cols" },
        el("div", {}, el("table", { class: "kv" }, el("tr", {}, el("th", {}, "metric"), el("th", { class: "num" }, "value"), el("th", {}, "95% CI"), el("th", { class: "num" }, "problems")),
          items.map((it) => el("tr", {}, el("td", {}, it.label), el("td", { class: "num" }, pct(it.value)), el("td", {}, ci(it.ci)),
            el("td", { class: "num" }, (s.problems_per_k || {})[it.label.split("@")[1]] ?? ""))))),
        el("div", {}, barChart(items))));
    }
    return out;
  }

  // ------------------------------------------------------------------ attempts
  function evalAttempt(a, i, gold) {
    const body = a.sp ? a.sp.map(([kind, text]) => (kind === "model" ? renderText(text) : el("pre", { class: "tool" }, text))) : renderText(a.t);
    return el("div", { class: "attempt", "data-status": a.s },
      el("div", { class: "head" }, el("b", {}, `attempt ${i + 1}`), badge(a.s, a.c),
        el("span", {}, "answer ", el("span", { class: "answer" }, a.a == null ? "(none)" : a.a), "  gold ",
          el("span", { class: "answer" }, gold == null ? "(none)" : gold)),
        el("span", { class: "muted" }, `finish: ${a.f}`), a.k != null ? el("span", { class: "muted" }, `${a.k} tokens`) : null),
      a.r ? el("div", { class: "small" }, "verdict: ", a.r) : null,
      body,
      (a.tc || []).map((t, j) => el("div", { class: "small" },
        el("span", { class: "muted" }, `tool call ${j + 1}: `), badge(t.st, t.st === "ok" ? true : false),
        t.w != null ? el("span", { class: "muted" }, ` ${(+t.w).toFixed(3)} s`) : null,
        t.code ? highlight(t.code, "python") : null, el("pre", { class: t.st === "ok" ? "tool" : "tool err" }, t.o == null ? "" : t.o))),
      a.d ? el("details", {}, el("summary", {}, "grader detail"), el("pre", {}, json(a.d))) : null);
  }
  function proveAttempt(a, i) {
    const rounds = (a.rd || []).map((r, j) => {
      const d = r.d || {};
      const checks = d.checks ? Object.entries(d.checks).map(([k, v]) => el("span", { class: "badge " + (v === "pass" ? "correct" : "wrong") }, `${k}: ${v}`)) : null;
      const err = (d.errors || [])[0];
      return el("div", {},
        el("div", { class: "head" }, el("span", { class: "muted" }, `round ${j + 1}`), badge(r.s, r.c), r.r ? el("span", { class: "small" }, r.r) : null),
        r.p != null ? highlight(r.p, "lean") : null,
        checks ? el("div", { class: "small" }, "audit: ", checks) : null,
        (d.findings || []).length ? el("div", { class: "small" }, "findings: ", d.findings.map((f) => `${f.check}: ${f.why}`).join("; ")) : null,
        d.axioms ? el("div", { class: "small" }, "axioms: ", d.axioms.join(", ") || "(none)") : null,
        err ? el("div", {}, el("span", { class: "small warn" }, "first Lean error"), el("pre", { class: "err" }, err)) : null,
        el("details", {}, el("summary", {}, "audit detail"), el("pre", {}, json(d))));
    });
    const se = a.se;
    return el("div", { class: "attempt", "data-status": a.s },
      el("div", { class: "head" }, el("b", {}, `attempt ${i + 1}`), badge(a.s, a.c)),
      se ? el("div", { class: "small" }, `search: ${se.status}, ${se.expansions} expansions, ${se.nodes} nodes, ${se.wall_s} s`,
        se.message ? ` - ${se.message}` : "", se.tactics && se.tactics.length ? highlight(se.tactics.join("\n"), "lean") : null) : null,
      rounds);
  }
  function problemDetail(D, p) {
    const M = D.M || [];
    const prompt = (p.m || []).map((i) => M[i]);
    return [
      el("h3", {}, D.kind === "prove" ? "statement" : "question"),
      D.kind === "prove" ? highlight(p.q || "", "lean") : el("pre", { class: "prose" }, p.q == null ? "" : p.q),
      p.g != null ? el("div", {}, "gold: ", el("span", { class: "answer" }, p.g)) : null,
      p.pv ? el("p", { class: "warn" }, "provisional: an attempt could not be judged; a resume retries this problem") : null,
      prompt.length ? el("details", {}, el("summary", {}, `prompt as the model saw it (${prompt.length} messages)`),
        prompt.map(([role, content]) => el("div", {}, el("b", { class: "small" }, role), renderText(content)))) : null,
      p.at.map((a, i) => (D.kind === "prove" ? proveAttempt(a, i) : evalAttempt(a, i, p.g))),
    ];
  }

  // ------------------------------------------------------------------ a paged, filtered table
  // spec: {rows, filters: [{value, label, test}], search(row) -> string, sorts: [{value, label, key}],
  //        head: [labels], cells(row) -> [td...], detail(row) -> nodes, initial}
  function pagedTable(spec) {
    const state = { filter: spec.initial || "all", q: "", sort: spec.sorts[0].value, page: 0, open: new Set() };
    const filterSel = el("select", { id: "vm-filter" }, spec.filters.map((f) => el("option", { value: f.value }, f.label)));
    filterSel.value = state.filter;
    const search = el("input", { type: "search", id: "vm-search", placeholder: "search id, text, answer…" });
    const sortSel = el("select", { id: "vm-sort" }, spec.sorts.map((s) => el("option", { value: s.value }, s.label)));
    const count = el("span", { id: "vm-count", class: "muted" });
    const tbody = el("tbody", { id: "vm-rows" });
    const prev = el("button", { type: "button", id: "vm-prev" }, "‹ prev");
    const next = el("button", { type: "button", id: "vm-next" }, "next ›");
    const pageInfo = el("span", { class: "muted", id: "vm-page" });
    let view = [];
    function apply() {
      const f = spec.filters.find((x) => x.value === state.filter) || spec.filters[0];
      const q = state.q.trim().toLowerCase();
      view = spec.rows.filter((r) => f.test(r) && (!q || spec.search(r).includes(q)));
      const s = spec.sorts.find((x) => x.value === state.sort);
      if (s && s.key) {
        const dir = s.desc ? -1 : 1;
        view.sort((a, b) => {
          const x = s.key(a), y = s.key(b);
          if (x == null && y == null) return a._i - b._i;
          if (x == null) return 1;
          if (y == null) return -1;
          return x < y ? -dir : x > y ? dir : a._i - b._i;
        });
      }
      state.page = Math.min(state.page, Math.max(0, Math.ceil(view.length / PAGE) - 1));
      draw();
    }
    function draw() {
      tbody.replaceChildren();
      const start = state.page * PAGE, rows = view.slice(start, start + PAGE);
      for (const r of rows) {
        const tr = el("tr", { class: "row", "data-id": r.id }, spec.cells(r));
        tbody.append(tr);
        const toggle = () => {
          if (state.open.has(r)) { state.open.delete(r); tr.classList.remove("open"); tr.nextSibling.remove(); }
          else { state.open.add(r); tr.classList.add("open"); tr.after(el("tr", { class: "detail" }, el("td", { colspan: spec.head.length }, spec.detail(r)))); }
        };
        tr.addEventListener("click", toggle);
        if (state.open.has(r)) { state.open.delete(r); toggle(); }
      }
      count.textContent = `${view.length} of ${spec.rows.length} ${spec.noun}`;
      pageInfo.textContent = view.length ? `${start + 1}–${start + rows.length}` : "";
      prev.disabled = state.page === 0;
      next.disabled = start + PAGE >= view.length;
    }
    filterSel.addEventListener("change", () => { state.filter = filterSel.value; state.page = 0; apply(); });
    search.addEventListener("input", () => { state.q = search.value; state.page = 0; apply(); });
    sortSel.addEventListener("change", () => { state.sort = sortSel.value; apply(); });
    prev.addEventListener("click", () => { state.page--; draw(); });
    next.addEventListener("click", () => { state.page++; draw(); });
    apply();
    return [el("div", { class: "toolbar" }, "show ", filterSel, search, "sort ", sortSel, count),
      el("table", { id: "vm-table" }, el("thead", {}, el("tr", {}, spec.head.map((h) => el("th", {}, h)))), tbody),
      el("div", { class: "pager" }, prev, pageInfo, next)];
  }

  function statusFilters(rows, statusesOf, unjudgedOf) {
    const present = new Set();
    for (const r of rows) for (const s of statusesOf(r)) present.add(s);
    const order = ["correct", "wrong", "unverifiable", "no_answer"];
    const list = [...present].sort((a, b) => ((order.indexOf(a) + 1 || 99) - (order.indexOf(b) + 1 || 99)) || a.localeCompare(b));
    return [{ value: "all", label: "all", test: () => true },
      ...list.map((s) => ({ value: s, label: `has ${s}`, test: (r) => statusesOf(r).includes(s) })),
      { value: "unjudged", label: UNJUDGED, test: unjudgedOf }];
  }

  function problemTable(D) {
    const probs = D.problems;
    const filters = statusFilters(probs, (p) => Object.keys(p._st), (p) => p._unj);
    filters.splice(1, 0, { value: "none_correct", label: "judged, none correct", test: (p) => p._j > 0 && p._c === 0 });
    if (probs.some((p) => p.pv)) filters.push({ value: "provisional", label: "provisional", test: (p) => p.pv });
    return pagedTable({
      rows: probs, noun: "problems", filters, search: (p) => p._hay,
      sorts: [{ value: "order", label: "benchmark order", key: (p) => p._i }, { value: "id", label: "id", key: (p) => p.id },
        { value: "acc_asc", label: "accuracy ↑", key: (p) => p._acc }, { value: "acc_desc", label: "accuracy ↓", key: (p) => p._acc, desc: true },
        { value: "tok_desc", label: "tokens ↓", key: (p) => p._tok, desc: true }, { value: "sec_desc", label: "seconds ↓", key: (p) => p.sec, desc: true }],
      head: ["#", "id", D.kind === "prove" ? "statement" : "question", D.kind === "prove" ? "split" : "gold", D.kind === "prove" ? "" : "answers", "correct / judged", "verdicts", "tokens", "s"],
      cells: (p) => {
        const answers = {};
        for (const a of p.at) if (a.a != null) answers[a.a] = (answers[a.a] || 0) + 1;
        return [el("td", { class: "num" }, p._i + 1), el("td", {}, p.id), el("td", {}, short(p.q, 140)),
          el("td", {}, D.kind === "prove" ? p.split : p.g), el("td", {}, Object.entries(answers).slice(0, 3).map(([k, v]) => el("span", { class: "answer" }, short(k, 30) + (v > 1 ? ` ×${v}` : "")))),
          el("td", { class: "num" }, `${p._c} / ${p._j}`), el("td", {}, Object.entries(p._st).map(([s, n]) => badge(s, p.at.find((a) => a.s === s).c, n > 1 ? ` ×${n}` : ""))),
          el("td", { class: "num" }, p._tok == null ? "" : Math.round(p._tok)), el("td", { class: "num" }, p.sec == null ? "" : (+p.sec).toFixed(1))];
      },
      detail: (p) => problemDetail(D, p),
    });
  }

  // ------------------------------------------------------------------ pages
  function pageRun(D) {
    prepare(D.problems);
    return [...runHeader(D.run, `${D.kind} report: ${D.run.benchmark || D.run.name}`), damagedNote(D), ...evalSummary(D),
      el("h2", {}, "Problems"), ...problemTable(D)];
  }

  function pageDatagen(D) {
    const F = D.funnel || {}, stages = F.stages || [];
    const maxIn = Math.max(1, ...stages.map((s) => s.entered || 0));
    const fmtDrop = (o) => Object.entries(o || {}).map(([k, v]) => el("span", { class: "badge" }, `${k}: ${v}`));
    const out = [...runHeader(D.run, `datagen report: ${D.run.name}`), damagedNote(D), el("h2", {}, "Funnel"),
      el("table", { id: "vm-funnel" }, el("thead", {}, el("tr", {}, ["stage", "in", "kept", "", "out", "dropped (why)", "rejected (why)", UNJUDGED].map((h) => el("th", {}, h)))),
        el("tbody", {}, stages.map((s) => {
          const bar = el("div", { class: "bar" }); bar.style.width = `${(240 * (s.left || 0)) / maxIn}px`;
          return el("tr", {}, el("td", {}, s.stage), el("td", { class: "num" }, `${s.entered} ${s.unit_in}`), el("td", { class: "num" }, s.left),
            el("td", {}, el("div", { class: "barbg" }, bar)), el("td", { class: "num" }, `${s.produced} ${s.unit_out}`),
            el("td", {}, fmtDrop(s.dropped)), el("td", {}, s.sub_unit ? el("span", { class: "muted" }, s.sub_unit + ": ") : null, fmtDrop(s.rejected_out)),
            el("td", { class: "num" }, s.unjudged || 0));
        })))];
    if (F.counts || F.timing) out.push(el("div", { class: "cols" }, el("div", {}, el("h3", {}, "counts"), kv(Object.entries(F.counts || {}))),
      el("div", {}, el("h3", {}, "time (s)"), kv(Object.entries(F.timing || {})))));
    out.push(el("h2", {}, "Drop reasons, with examples"));
    if (!D.drops.length) out.push(el("p", { class: "muted" }, "nothing was rejected (rejected.jsonl is empty)"));
    out.push(el("div", { id: "vm-drops" }, D.drops.map((d) => el("details", { "data-stage": d.stage, "data-reason": d.reason },
      el("summary", {}, `${d.stage} · ${d.reason} · ${d.n}`), d.ex.map((x) => el("div", { class: "attempt" },
        el("div", { class: "small" }, x.reason || ""), el("pre", {}, json(x.record))))))));
    const rows = D.rows;
    rows.forEach((r, i) => { r._i = i; r._hay = [r.id, r.pid, r.a, ...(r.m || []).map((k) => D.M[k][1])].join("\n").toLowerCase(); });
    const kinds = [...new Set(rows.map((r) => String(r.kind)))];
    out.push(el("h2", {}, "Exported rows"), ...pagedTable({
      rows, noun: "rows", search: (r) => r._hay,
      filters: [{ value: "all", label: "all", test: () => true }, ...kinds.map((k) => ({ value: k, label: k, test: (r) => String(r.kind) === k }))],
      sorts: [{ value: "order", label: "file order", key: (r) => r._i }, { value: "pid", label: "problem id", key: (r) => r.pid }],
      head: ["#", "id", "kind", "verified by", "problem", "question", "answer", "verdicts"],
      cells: (r) => {
        const user = (r.m || []).map((k) => D.M[k]).find((m) => m[0] === "user");
        return [el("td", { class: "num" }, r._i + 1), el("td", {}, r.id), el("td", {}, r.kind), el("td", {}, r.vb), el("td", {}, r.pid),
          el("td", {}, short(user ? user[1] : "", 120)), el("td", {}, r.a),
          el("td", {}, Object.entries(r.v || {}).map(([k, v]) => el("span", { class: "badge " + (v || {}).status }, `${k}: ${(v || {}).status}`)))];
      },
      detail: (r) => [(r.m || []).map((k) => { const [role, content] = D.M[k]; return el("div", {}, el("b", { class: "small" }, role), renderText(content)); }),
        Object.entries(r.v || {}).map(([k, v]) => el("div", { class: "small" }, `${k}: `, badge((v || {}).status, true), " ", (v || {}).reason || "")),
        el("details", {}, el("summary", {}, "verdict detail and provenance"), el("pre", {}, json({ verdicts: r.v, provenance: r.pr })))],
    }));
    return out;
  }

  function pageIterate(D) {
    const link = (path, label) => (path ? el("a", { href: path + "/report.html" }, label) : "-");
    const L = D.links || { rounds: {} };
    return [...runHeader(D.run, `iterate report: ${D.run.name}`),
      L.seed ? el("p", {}, "seed data: ", link(L.seed, "seed datagen report")) : null,
      el("h2", {}, "Rounds"),
      el("table", { id: "vm-rounds" }, el("thead", {}, el("tr", {}, ["round", "model", "train", "accuracy [95% CI]", "judged", "gain vs base [95% CI]", "verified yield", "SFT rows seed+own", "pairs", "reward margin (accuracy)", "eval", "datagen"].map((h) => el("th", {}, h)))),
        el("tbody", {}, D.rounds.map((r) => {
          const g = r.gain_vs_base, d = r.data, l = L.rounds[String(r.round)] || {};
          return el("tr", {}, el("td", {}, r.round), el("td", {}, r.model), el("td", {}, (r.train || []).join("+") || "-"),
            el("td", {}, r.accuracy == null ? "not judged" : `${pct(r.accuracy)} ${ci(r.accuracy_ci95)}`),
            el("td", { class: "num" }, `${r.n_judged ?? "?"} / ${r.n_problems ?? "?"}`),
            el("td", {}, g == null ? "-" : g.gain == null ? "not judged" : `${sgn(g.gain)} [${sgn(g.ci95[0])}, ${sgn(g.ci95[1])}] (${g.problems} problems)`),
            el("td", {}, r.verified_yield == null ? "-" : `${r.verified}/${r.attempts} (${pct(r.verified_yield)})`),
            el("td", {}, d ? `${d.seed}+${d.generated} = ${d.train}` : "-"), el("td", { class: "num" }, r.pairs ?? "-"),
            el("td", {}, r.reward_margin == null ? "-" : `${r.reward_margin >= 0 ? "+" : ""}${r.reward_margin.toFixed(3)} (${pct(r.reward_accuracy)})`),
            el("td", {}, link(l.eval, "eval report")), el("td", {}, link(l.data, "datagen report")));
        }))),
      el("h3", {}, "accuracy per round (95% Wilson CI)"),
      lineChart(D.rounds.map((r) => ({ x: r.round, y: r.accuracy, ci: r.accuracy_ci95 })))];
  }

  function pageCompare(D) {
    const A = D.a, B = D.b, P = D.paired;
    const probs = D.problems;
    probs.forEach((p, i) => { p._i = i; p._hay = [p.id, p.q, p.g].filter((x) => x != null).join("\n").toLowerCase(); });
    const lost = probs.filter((p) => p.fl === "right->wrong").length, gained = probs.filter((p) => p.fl === "wrong->right").length;
    const side = (S, name) => el("div", {}, el("h3", {}, `${name}: ${S.run.name}`), el("div", { class: "muted small" }, S.run.path),
      kv([["accuracy", `${pct(S.acc)} ${ci(S.ci95)}`], ["model", S.run.model], ["benchmark", S.run.benchmark], ["strategy / mode", S.run.strategy || S.run.mode],
        ["n", S.run.n], ["grader version", S.run.grader_version], ["git revision", S.run.git_revision]]));
    const frac = (s) => `${s.c} / ${s.j}` + (s.j < s.n ? ` (${s.n - s.j} not judged)` : "");
    const attempts = (p, s) => (s.at || []).map((a, i) => (D.sub === "prove" ? proveAttempt(a, i) : evalAttempt(a, i, p.g)));
    return [el("h1", {}, `comparison: ${A.run.name} (A) vs ${B.run.name} (B)`),
      D.warnings.map((w) => el("p", { class: "warn" }, w)),
      el("div", { class: "cols" }, side(A, "A"), side(B, "B")),
      el("h2", {}, "Paired difference"),
      el("div", { class: "cards", id: "vm-paired" },
        card("B − A, paired bootstrap 95% CI" + (P.diff == null ? "" : ` [${sgn(P.ci95[0])}, ${sgn(P.ci95[1])}]`), P.diff == null ? "not judged" : sgn(P.diff) + " pts"),
        card("problems judged in both", P.problems), card("right → wrong", lost, "lost"), card("wrong → right", gained, "gained"),
        card(UNJUDGED + " in one run (left out)", P.left_out), card("only in A / only in B", `${P.only_a} / ${P.only_b}`)),
      el("h2", {}, "Problems"),
      ...pagedTable({
        rows: probs, noun: "problems", initial: "flipped", search: (p) => p._hay,
        filters: [{ value: "flipped", label: "flipped", test: (p) => !!p.fl }, { value: "lost", label: "right → wrong", test: (p) => p.fl === "right->wrong" },
          { value: "gained", label: "wrong → right", test: (p) => p.fl === "wrong->right" }, { value: "unjudged", label: UNJUDGED + " in a run", test: (p) => !p.A.j || !p.B.j },
          { value: "all", label: "all shared problems", test: () => true }],
        sorts: [{ value: "order", label: "A's order", key: (p) => p._i }, { value: "id", label: "id", key: (p) => p.id },
          { value: "delta", label: "change", key: (p) => (p.A.j && p.B.j ? p.B.c / p.B.j - p.A.c / p.A.j : null) }],
        head: ["#", "id", "question", "gold", "A correct / judged", "B correct / judged", "change"],
        cells: (p) => [el("td", { class: "num" }, p._i + 1), el("td", {}, p.id), el("td", {}, short(p.q, 120)), el("td", {}, p.g),
          el("td", { class: "num" }, frac(p.A)), el("td", { class: "num" }, frac(p.B)),
          el("td", {}, p.fl ? el("span", { class: "badge " + (p.fl === "right->wrong" ? "lost" : "gained") }, p.fl === "right->wrong" ? "right → wrong" : "wrong → right") : "")],
        detail: (p) => [D.sub === "prove" ? highlight(p.q || "", "lean") : el("pre", { class: "prose" }, p.q == null ? "" : p.q),
          p.g != null ? el("div", {}, "gold: ", el("span", { class: "answer" }, p.g)) : null,
          el("div", { class: "cols" }, el("div", { class: "side-a" }, el("h3", {}, "A: " + A.run.name), attempts(p, p.A)),
            el("div", { class: "side-b" }, el("h3", {}, "B: " + B.run.name), attempts(p, p.B))),
          !p.A.at ? el("p", { class: "muted small" }, "attempts are embedded for flipped problems and problems a run could not judge") : null],
      })];
  }

  async function main() {
    const t0 = performance.now();
    const app = document.getElementById("app");
    let D;
    try { D = await loadData(); } catch (e) {
      app.replaceChildren(el("p", { class: "loud" }, "could not read the embedded data: " + e));
      throw e;
    }
    const page = { eval: pageRun, prove: pageRun, datagen: pageDatagen, iterate: pageIterate, compare: pageCompare }[D.kind];
    app.replaceChildren(...(page ? page(D) : [el("p", { class: "loud" }, "unknown report kind " + D.kind)]).flat(Infinity).filter((x) => x != null));
    window.vmReport = { kind: D.kind, renderMs: performance.now() - t0 };
    document.body.setAttribute("data-ready", "1");
  }
  main();
})();
