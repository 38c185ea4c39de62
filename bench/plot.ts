// SPDX-License-Identifier: GPL-2.0-or-later
/* A small SVG line chart: guest instructions per traced call against irrelevant ops. */
import type { GuestCostRow } from './ftrace.js';

const COLORS: Record<string, string> = { trampolines: '#1b7f3b', list: '#c0392b', nop: '#7f8c8d' };

export function costPlotSvg(rows: GuestCostRow[]): string {
  const W = 730;
  const H = 400;
  const m = { l: 70, r: 230, t: 40, b: 60 };
  const xs = [...new Set(rows.map((r) => r.irrelevantOps))].sort((a, b) => a - b);
  const ymax = Math.max(...rows.map((r) => r.instructions));
  // The x axis is by position (0, 1, 10, 100 ops equally spaced); y is linear.
  const px = (v: number) => m.l + (xs.indexOf(v) * (W - m.l - m.r)) / Math.max(1, xs.length - 1);
  const py = (v: number) => H - m.b - (v / ymax) * (H - m.t - m.b);
  const out: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="12">`,
    `<rect width="${W}" height="${H}" fill="white"/>`,
    `<text x="${m.l}" y="22" font-size="14" font-weight="bold">Guest instructions per traced call, one relevant ops</text>`,
    `<line x1="${m.l}" y1="${H - m.b}" x2="${W - m.r}" y2="${H - m.b}" stroke="black"/>`,
    `<line x1="${m.l}" y1="${m.t}" x2="${m.l}" y2="${H - m.b}" stroke="black"/>`,
    `<text x="${(m.l + W - m.r) / 2}" y="${H - 20}" text-anchor="middle">irrelevant ops registered (filters on other functions; positions, not to scale)</text>`,
    `<text transform="translate(18 ${(m.t + H - m.b) / 2}) rotate(-90)" text-anchor="middle">instructions</text>`,
  ];
  for (const x of xs) out.push(`<text x="${px(x)}" y="${H - m.b + 18}" text-anchor="middle">${x}</text>`);
  for (let i = 0; i <= 4; i++) {
    const v = Math.round((ymax * i) / 4);
    out.push(`<text x="${m.l - 8}" y="${py(v) + 4}" text-anchor="end">${v}</text>`);
    out.push(`<line x1="${m.l}" y1="${py(v)}" x2="${W - m.r}" y2="${py(v)}" stroke="#ddd"/>`);
  }
  let legend = 0;
  for (const config of ['trampolines', 'list', 'nop']) {
    for (const saveRegs of [false, true]) {
      const pts = rows.filter((r) => r.config === config && r.saveRegs === saveRegs).sort((a, b) => a.irrelevantOps - b.irrelevantOps);
      if (!pts.length) continue;
      const d = pts.map((p, i) => `${i ? 'L' : 'M'}${px(p.irrelevantOps).toFixed(1)},${py(p.instructions).toFixed(1)}`).join(' ');
      const dash = saveRegs ? ' stroke-dasharray="6 4"' : '';
      out.push(`<path d="${d}" fill="none" stroke="${COLORS[config]}" stroke-width="2"${dash}/>`);
      for (const p of pts) out.push(`<circle cx="${px(p.irrelevantOps).toFixed(1)}" cy="${py(p.instructions).toFixed(1)}" r="3" fill="${COLORS[config]}"/>`);
      const ly = m.t + 10 + legend++ * 20;
      out.push(`<line x1="${W - m.r + 15}" y1="${ly}" x2="${W - m.r + 45}" y2="${ly}" stroke="${COLORS[config]}" stroke-width="2"${dash}/>`);
      out.push(`<text x="${W - m.r + 52}" y="${ly + 4}">${config}${saveRegs ? ' + SAVE_REGS' : ''}</text>`);
    }
  }
  out.push('</svg>');
  return out.join('\n') + '\n';
}
