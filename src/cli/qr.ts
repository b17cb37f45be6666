import qrcode from 'qrcode-generator';

/**
 * A QR code for a terminal: two modules per character cell (upper and lower half blocks), with
 * the quiet zone scanners need. On a TTY it is drawn black on white with ANSI colours, so it scans
 * on dark and light terminals alike; elsewhere light modules are full blocks (a dark background
 * then reads as the dark modules, which is what terminals usually have).
 */
export function terminalQr(text: string, o: { ansi: boolean }): string {
  const qr = qrcode(0, 'M');
  qr.addData(text, 'Byte');
  qr.make();
  const n = qr.getModuleCount();
  const quiet = 2;
  const dark = (r: number, c: number) => r >= 0 && c >= 0 && r < n && c < n && qr.isDark(r, c);
  const lines: string[] = [];
  for (let r = -quiet; r < n + quiet; r += 2) {
    let line = '';
    for (let c = -quiet; c < n + quiet; c++) {
      const top = dark(r, c);
      const bottom = dark(r + 1, c);
      if (o.ansi) line += top ? (bottom ? '█' : '▀') : bottom ? '▄' : ' ';
      else line += top ? (bottom ? ' ' : '▄') : bottom ? '▀' : '█';
    }
    // Black foreground on a white background; the glyphs draw the dark modules.
    lines.push(o.ansi ? `\x1b[30;47m${line}\x1b[0m` : line);
  }
  return lines.join('\n');
}
