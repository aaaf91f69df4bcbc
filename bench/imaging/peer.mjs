// The sharp peer of the imaging benchmark, written the way sharp's users run it in production:
//
// - each photo is decoded once: `sharp(file, { autoOrient: true })` + `resize` to the largest width, so
//   libvips shrinks on load (JPEG DCT scaling) and orients before anything else;
// - every smaller width is derived from the next larger level's pixels (`.raw()` buffers fed back as
//   `sharp(buf, { raw })`), never from the original again;
// - WebP and AVIF of each width are encoded from those pixels, while the next width is derived;
// - IN_FLIGHT photos are processed at once, `sharp.concurrency(THREADS)` libvips threads each, so
//   IN_FLIGHT x THREADS = the cores; run.py sets UV_THREADPOOL_SIZE = IN_FLIGHT x THREADS, so no more
//   native operations than cores run at once (with --threads 0 the libuv pool keeps its default of 4).
//
// Usage:
//   node peer.mjs --out DIR [--widths 320,640,1280,1920] [--webp-q 80 --webp-effort 4] \
//        [--avif-q 60 --avif-effort 1 --avif-chroma 4:4:4] [--in-flight 2] [--threads 1] [--keep 1280] FILE...
//   node peer.mjs --out DIR --in-flight 1 --threads 0 FILE   # one photo, sharp's default threads
//
// Widths wider than the upright photo are skipped (at least one output: the photo's own width),
// as Darkroom does. The `--keep` width's outputs are written to DIR (for SSIM scoring); the rest
// are only counted. Prints one JSON line: wall seconds (first decode to last encode, in-process),
// bytes per format, outputs, peak RSS.
import sharp from "sharp";
import { mkdirSync, writeFileSync } from "node:fs";
import { basename } from "node:path";
import { parseArgs } from "node:util";

const { values: opt, positionals: files } = parseArgs({
  allowPositionals: true,
  options: {
    out: { type: "string" },
    widths: { type: "string", default: "320,640,1280,1920" },
    "webp-q": { type: "string", default: "80" },
    "webp-effort": { type: "string", default: "4" },
    "avif-q": { type: "string", default: "60" },
    "avif-effort": { type: "string", default: "1" },
    "avif-chroma": { type: "string", default: "4:4:4" }, // sharp's default; Darkroom's libavif uses 4:2:0
    "in-flight": { type: "string", default: "2" },
    threads: { type: "string", default: "1" }, // libvips threads per photo; 0 = sharp's default
    keep: { type: "string", default: "1280" },
  },
});
if (!opt.out || files.length === 0) {
  console.error("usage: node peer.mjs --out DIR [options] FILE...  (see the comment at the top)");
  process.exit(2);
}
const widths = opt.widths.split(",").map(Number).sort((a, b) => b - a);
const webp = { quality: Number(opt["webp-q"]), effort: Number(opt["webp-effort"]) };
const avif = { quality: Number(opt["avif-q"]), effort: Number(opt["avif-effort"]), chromaSubsampling: opt["avif-chroma"] };
const keep = Number(opt.keep);
if (Number(opt.threads) > 0) sharp.concurrency(Number(opt.threads));
sharp.cache(false); // every photo is new: the operation cache only costs memory here
mkdirSync(opt.out, { recursive: true });

const bytes = { webp: 0, avif: 0 };
let outputs = 0;

async function encodeLevel(name, level, width) {
  const { data, info } = level;
  const raw = { raw: { width: info.width, height: info.height, channels: info.channels } };
  const [w, a] = await Promise.all([sharp(data, raw).webp(webp).toBuffer(), sharp(data, raw).avif(avif).toBuffer()]);
  bytes.webp += w.length;
  bytes.avif += a.length;
  outputs += 2;
  if (width === keep) {
    writeFileSync(`${opt.out}/${name}.webp`, w);
    writeFileSync(`${opt.out}/${name}.avif`, a);
  }
}

async function one(file) {
  const name = basename(file);
  // The header only (no pixels): the upright width decides which widths exist.
  const meta = await sharp(file).metadata();
  const upright = (meta.orientation || 1) >= 5 ? meta.height : meta.width;
  let todo = widths.filter((w) => w <= upright);
  if (todo.length === 0) todo = [upright];
  // One decode: shrink-on-load + orient + resize to the largest width, 8-bit sRGB pixels out.
  let level = await sharp(file, { autoOrient: true })
    .resize({ width: todo[0] })
    .toColourspace("srgb")
    .raw({ depth: "uchar" })
    .toBuffer({ resolveWithObject: true });
  // Each level's encodes run while the next smaller level is derived from its pixels.
  for (let i = 0; i < todo.length; i++) {
    const { data, info } = level;
    const next = i + 1 < todo.length
      ? sharp(data, { raw: { width: info.width, height: info.height, channels: info.channels } })
        .resize({ width: todo[i + 1] })
        .raw()
        .toBuffer({ resolveWithObject: true })
      : null;
    await encodeLevel(name, level, todo[i]);
    if (next) level = await next;
  }
}

const t0 = process.hrtime.bigint();
const queue = [...files];
await Promise.all(Array.from({ length: Number(opt["in-flight"]) }, async () => {
  while (queue.length) await one(queue.shift());
}));
const wall = Number(process.hrtime.bigint() - t0) / 1e9;
console.log(JSON.stringify({
  wall_s: wall, bytes, outputs, photos: files.length, concurrency: sharp.concurrency(),
  peak_rss_mb: process.resourceUsage().maxRSS / 1024,
}));
