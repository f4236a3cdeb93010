// The drill report page's stylesheet, inlined in its <style> (the page's CSP allows no other source). The class
// names are the page's DOM contract, shared with report-html.ts and the timeline files.

export const STYLESHEET = `
:root { --primary: #2f6fdf; --backup: #17a589; --failed: #d7263d; --other: #9aa3ae; --gap: #f0a202;
  --ink: #1d2430; --muted: #6b7480; --line: #e3e7ee; --ok-bg: #e7f6ee; --ok-ink: #17794a; --bad-bg: #fde8ea; --bad-ink: #b3172c;
  color-scheme: light; }
* { box-sizing: border-box; }
body { margin: 0; background: #f5f7fa; color: var(--ink); font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "Noto Sans", "DejaVu Sans", sans-serif; }
main { max-width: 1260px; margin: 0 auto; padding: 24px 24px 40px; }
header, section { background: #fff; border: 1px solid var(--line); border-radius: 10px; padding: 16px 20px; margin-bottom: 16px; }
h1 { font-size: 22px; margin: 0; }
h2 { font-size: 16px; margin: 0 0 10px; }
h3 { font-size: 15px; margin: 0 0 6px; }
.title-row { display: flex; align-items: center; gap: 14px; flex-wrap: wrap; }
.verdict { font-weight: 700; letter-spacing: .06em; padding: 4px 12px; border-radius: 6px; font-size: 15px; }
.verdict.passed { background: var(--ok-bg); color: var(--ok-ink); border: 1px solid #9ed8b8; }
.verdict.failed { background: var(--bad-bg); color: var(--bad-ink); border: 1px solid #f2a5af; }
.why { margin: 8px 0 0; }
.why a { color: var(--bad-ink); font-weight: 600; }
.interrupted { background: #fff4d6; border: 1px solid #f0cf72; padding: 6px 10px; border-radius: 6px; margin: 10px 0 0; }
.pair { display: flex; flex-wrap: wrap; gap: 8px 28px; margin: 12px 0 0; }
.pair div { min-width: 0; }
.pair dt { color: var(--muted); font-size: 12px; text-transform: uppercase; letter-spacing: .05em; }
.pair dd { margin: 0; font-weight: 600; overflow-wrap: anywhere; }
.pair dd.host-primary { color: var(--primary); }
.pair dd.host-backup { color: var(--backup); }
table { border-collapse: collapse; width: 100%; }
th, td { text-align: left; padding: 6px 10px; border-bottom: 1px solid var(--line); vertical-align: top; }
thead th { font-size: 12px; color: var(--muted); font-weight: 600; text-transform: uppercase; letter-spacing: .04em; }
.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
.summary th[scope=row] a { color: var(--ink); font-weight: 600; text-decoration: none; }
.summary th[scope=row] .muted { font-weight: 400; font-size: 12px; }
.summary tr.failed { background: #fff7f8; }
.failed-probes.nonzero { color: var(--bad-ink); font-weight: 600; }
.muted { color: var(--muted); }
.badge { display: inline-block; font-size: 12px; font-weight: 700; padding: 1px 7px; border-radius: 4px; }
.badge.ok { background: var(--ok-bg); color: var(--ok-ink); }
.badge.failed { background: var(--bad-bg); color: var(--bad-ink); }
figure { margin: 0; }
figcaption { color: var(--muted); font-size: 12px; margin-top: 6px; }
.phase-detail { margin: 0 0 14px; padding: 14px 16px; border-left: 4px solid #9ed8b8; background: #fcfdfe; }
.phase-detail.failed { border-left-color: var(--failed); }
.phase-facts { margin: 0 0 8px; color: var(--muted); }
.k-primary { color: var(--primary); } .k-backup { color: var(--backup); } .k-failed { color: var(--failed); } .k-other { color: var(--muted); }
.problem { background: var(--bad-bg); border: 1px solid #f2a5af; border-radius: 6px; padding: 6px 12px; margin: 8px 0; }
.problem p { margin: 4px 0; overflow-wrap: anywhere; }
.steps { font-size: 13px; margin-top: 8px; }
.steps .detail { color: var(--muted); overflow-wrap: anywhere; }
.step-row.failed td { background: #fff7f8; }
code { font: 12px ui-monospace, "DejaVu Sans Mono", monospace; background: #eef1f5; padding: 0 4px; border-radius: 3px; }
footer { color: var(--muted); font-size: 12px; text-align: center; }
svg.timeline { display: block; width: 100%; height: auto; font-family: inherit; }
svg.phase-timeline { margin: 6px 0; }
.plot-bg { fill: #fbfcfd; }
.phase .band { fill: #eef2f8; }
.phase.odd .band { fill: #f7f9fc; }
.phase.failed .band { fill: #fdecee; }
.band-edge { stroke: #c9d2df; stroke-width: 1; }
.phase-label { fill: #3b4656; font-weight: 600; }
.phase.failed .phase-label { fill: var(--bad-ink); }
.grid { stroke: #dfe4ec; stroke-width: .6; stroke-dasharray: 2 3; }
.tick, .axis-line { stroke: #8b95a3; stroke-width: 1; }
.tick-label, .axis-title, .lane-note, .rtt-label { fill: var(--muted); }
.lane-name { fill: var(--ink); font-weight: 600; }
.lane-note { font-size: 10px; }
.rtt-label { font-size: 9px; paint-order: stroke; stroke: #fff; stroke-width: 3px; stroke-linejoin: round; }
.probe.ok-primary, .share.ok-primary, .legend-swatch.ok-primary { fill: var(--primary); }
.probe.ok-backup, .share.ok-backup, .legend-swatch.ok-backup { fill: var(--backup); }
.probe.ok-other, .share.ok-other, .legend-swatch.ok-other { fill: var(--other); }
.probe.failed, .share.failed, .legend-swatch.failed { fill: var(--failed); }
.rtt-grid { stroke: #e6eaf0; stroke-width: .6; }
.rtt-ok { stroke: #56657a; stroke-width: 1.2; fill: none; }
.rtt-failed { stroke: var(--failed); stroke-width: 1.6; fill: none; }
.gap-shade { fill: var(--gap); fill-opacity: .16; stroke: var(--gap); stroke-opacity: .7; stroke-width: .8; }
.gap-bar, .legend-swatch.gap-bar { fill: var(--gap); }
.gap.missed .gap-bar { fill: var(--failed); }
.gap.missed .gap-shade { fill: var(--failed); stroke: var(--failed); }
.gap-label { fill: #8a5a00; font-weight: 700; }
.gap.minor .gap-bar { fill: #b7bec9; }
.gap.minor .gap-shade { fill: #b7bec9; stroke: #9aa3ae; }
.gap.minor .gap-label { fill: var(--muted); font-weight: 400; }
.gap.missed .gap-label { fill: var(--bad-ink); }
.step-line { stroke: #7d8796; stroke-width: .8; stroke-dasharray: 3 2; opacity: .55; }
.step-line.failed { stroke: var(--failed); opacity: .9; }
.step-dot, .legend-swatch.step-dot-ok { fill: #fff; stroke: #3b4656; stroke-width: 1.6; }
.step.failed .step-dot, .legend-swatch.step-dot-failed { fill: var(--failed); stroke: var(--bad-ink); stroke-width: 1.6; }
.step-span { fill: #b9c2cf; }
.step.failed .step-span { fill: #f2a5af; }
.step-label { fill: #2b3442; paint-order: stroke; stroke: #fbfcfd; stroke-width: 3px; stroke-linejoin: round; }
.step.failed .step-label { fill: var(--bad-ink); font-weight: 700; }
.legend-label { fill: var(--ink); }
@media print { body { background: #fff; } header, section { border: none; } }
table.clients { margin-top: 0.8em; }
p.drain { margin: 0.6em 0 0.2em; }
svg.drain-chart { display: block; max-width: 100%; height: auto; }
rect.drain-bar { fill: #b36b00; }
`;
