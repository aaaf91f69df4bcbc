// sharp / libvips side of the imaging benchmark. Usage:
//   node sharp_bench.mjs OUTDIR EFFORT WEBP_Q AVIF_Q POOL THREADS WIDTHS(comma) FILE...
// POOL images are processed at once; THREADS = sharp.concurrency (libvips threads per image, 0 = default).
// Prints one JSON line: wall seconds, bytes per format, peak RSS.
import sharp from "sharp";
import { mkdirSync, writeFileSync } from "node:fs";
import { basename } from "node:path";

const [outDir, effort, webpQ, avifQ, pool, threads, widthsArg, ...files] = process.argv.slice(2);
const widths = widthsArg.split(",").map(Number).sort((a, b) => b - a);
if (Number(threads) > 0) sharp.concurrency(Number(threads));
sharp.cache(false);
mkdirSync(outDir, { recursive: true });
const bytes = { webp: 0, avif: 0 };

async function one(file) {
  const meta = await sharp(file).metadata();
  const upright = (meta.orientation || 1) >= 5 ? meta.height : meta.width;
  const base = sharp(file).rotate();
  for (const w of widths.filter((w) => w <= upright)) {
    const resized = base.clone().resize({ width: w });
    const webp = await resized.clone().webp({ quality: Number(webpQ) }).toBuffer();
    const avif = await resized.clone().avif({ quality: Number(avifQ), effort: Number(effort) }).toBuffer();
    bytes.webp += webp.length;
    bytes.avif += avif.length;
    if (w === 1280) {
      writeFileSync(`${outDir}/${basename(file)}.webp`, webp);
      writeFileSync(`${outDir}/${basename(file)}.avif`, avif);
    }
  }
}

const t0 = process.hrtime.bigint();
const queue = [...files];
await Promise.all(Array.from({ length: Number(pool) }, async () => {
  while (queue.length) await one(queue.shift());
}));
const wall = Number(process.hrtime.bigint() - t0) / 1e9;
console.log(JSON.stringify({ wall_s: wall, bytes, peak_rss_mb: process.resourceUsage().maxRSS / 1024 }));
