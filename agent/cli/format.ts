// Output helpers for the client commands: aligned tables, and a progress bar on a terminal.

/**
 * Columns are padded to their longest cell up to this width; a longer cell pushes only its own
 * row out of line (one 4 KiB key padded every row of `kv ls` to 4 KiB).
 */
export const TABLE_MAX_COLUMN = 64;

/** Renders rows as a left-aligned table with a header line. */
export function table(headers: string[], rows: Array<Array<string | number | undefined>>): string {
  const cells = rows.map((r) => r.map((c) => (c === undefined ? '' : String(c))));
  const widths = headers.map((h, i) =>
    Math.max(
      h.length,
      ...cells.map((r) => (r[i] ?? '').length).filter((n) => n <= TABLE_MAX_COLUMN),
    ),
  );
  const line = (r: string[]) =>
    r
      .map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i])))
      .join('  ')
      .trimEnd();
  return [line(headers), ...cells.map(line)].join('\n');
}

export function formatTags(tags: Record<string, string> | undefined): string {
  if (!tags) return '';
  return Object.entries(tags)
    .map(([k, v]) => `${k}=${v}`)
    .join(',');
}

/** A one-line progress bar redrawn in place on a TTY (stderr); silent elsewhere. */
export class Progress {
  readonly #total: number;
  readonly #label: string;
  readonly #tty: boolean;
  #last = 0;
  #done = 0;
  readonly #started = Date.now();

  constructor(label: string, total: number, stream: NodeJS.WriteStream = process.stderr) {
    this.#label = label;
    this.#total = total;
    this.#tty = Boolean(stream.isTTY);
  }

  update(done: number): void {
    this.#done = done;
    if (!this.#tty) return;
    const now = Date.now();
    if (now - this.#last < 100 && done < this.#total) return;
    this.#last = now;
    this.#draw();
  }

  #draw(): void {
    const width = 30;
    const frac = this.#total > 0 ? Math.min(1, this.#done / this.#total) : 0;
    const filled = Math.round(frac * width);
    const secs = Math.max(0.001, (Date.now() - this.#started) / 1000);
    const rate = this.#done / secs / (1024 * 1024);
    const pct = this.#total > 0 ? `${(frac * 100).toFixed(0).padStart(3)}%` : '';
    process.stderr.write(
      `\r${this.#label} [${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${pct} ${(this.#done / 1048576).toFixed(1)} MiB ${rate.toFixed(1)} MiB/s`,
    );
  }

  finish(): void {
    if (!this.#tty) return;
    this.#draw();
    process.stderr.write('\n');
  }
}

/** Bytes in binary units: "512 B", "1.5 MiB". */
export function formatBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = n;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return i === 0 ? `${v} B` : `${v.toFixed(1)} ${units[i]}`;
}
