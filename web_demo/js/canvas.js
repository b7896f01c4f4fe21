// The page's canvas computations: strokes, a digit framed as MNIST was, a picture file fitted
// or cropped into the drawing, the drawing as the model's input, images drawn into a canvas.
// They take what they work on as arguments and keep no state; js/app.js wires them to the page.
import {MNIST_SIDE} from './alae_model.js';

/** Paints ``canvas`` black (the digits' background). */
export function clearCanvas(canvas) {
  const ctx = canvas.getContext('2d');
  ctx.fillStyle = '#000';
  ctx.fillRect(0, 0, canvas.width, canvas.height);
}

/** A white pen stroke from point ``from`` to ``to`` ([x, y] in canvas pixels). */
export function strokeLine(canvas, from, to) {
  const ctx = canvas.getContext('2d');
  ctx.strokeStyle = '#fff';
  ctx.lineWidth = 22;
  ctx.lineCap = 'round';
  ctx.lineJoin = 'round';
  ctx.beginPath();
  ctx.moveTo(from[0], from[1]);
  ctx.lineTo(to[0], to[1]);
  ctx.stroke();
}

/** The point of a pointer event in ``canvas`` pixels, whatever size the canvas is shown at. */
export function canvasPoint(canvas, event) {
  const r = canvas.getBoundingClientRect();
  return [(event.clientX - r.left) * canvas.width / r.width,
    (event.clientY - r.top) * canvas.height / r.height];
}

/**
 * MNIST geometry: the strokes' bounding box scaled to 20x20 of the 28x28 frame and their
 * centre of mass put in the middle, as the MNIST digits were prepared. Returns a canvas.
 */
export function mnistFramed(source) {
  const size = source.width;
  const {data} = source.getContext('2d').getImageData(0, 0, size, size);
  let x0 = size; let y0 = size; let x1 = -1; let y1 = -1;
  let mass = 0; let mx = 0; let my = 0;
  for (let y = 0; y < size; y++) {
    for (let x = 0; x < size; x++) {
      const v = data[4 * (y * size + x)] / 255;
      if (v > 0.1) {
        x0 = Math.min(x0, x); x1 = Math.max(x1, x); y0 = Math.min(y0, y); y1 = Math.max(y1, y);
      }
      mass += v; mx += v * x; my += v * y;
    }
  }
  if (x1 < 0 || mass === 0) return source;  // blank: nothing to centre
  const scale = (size * 20 / MNIST_SIDE) / Math.max(x1 - x0 + 1, y1 - y0 + 1);
  const out = document.createElement('canvas');
  out.width = out.height = size;
  clearCanvas(out);
  const ctx = out.getContext('2d');
  ctx.setTransform(scale, 0, 0, scale, size / 2 - scale * mx / mass,
                   size / 2 - scale * my / mass);
  ctx.drawImage(source, 0, 0);
  return out;
}

/**
 * Draws a decoded picture file into ``canvas``. With ``crop`` its centre square fills the
 * canvas (the framing of the training images: alae_tf/data centre-crops every picture);
 * otherwise the whole picture is scaled to fit and centred on black. For an MNIST model
 * (``mnist``) a dark digit on light paper becomes MNIST's light digit on black. Returns the
 * side of the centre square when a non-square picture was cropped, else null.
 */
export function drawPicture(canvas, bitmap, {grayscale, mnist, crop}) {
  const size = canvas.width;
  const side = Math.min(bitmap.width, bitmap.height);
  clearCanvas(canvas);
  const ctx = canvas.getContext('2d');
  ctx.filter = grayscale ? 'grayscale(1)' : 'none';
  if (crop) {
    ctx.drawImage(bitmap, (bitmap.width - side) / 2, (bitmap.height - side) / 2, side, side,
                  0, 0, size, size);
  } else {
    const scale = Math.min(size / bitmap.width, size / bitmap.height);
    const w = bitmap.width * scale;
    const h = bitmap.height * scale;
    ctx.drawImage(bitmap, (size - w) / 2, (size - h) / 2, w, h);
  }
  ctx.filter = 'none';
  const cropped = crop && bitmap.width !== bitmap.height ? side : null;
  if (!mnist) return cropped;
  const image = ctx.getImageData(0, 0, size, size);
  let mean = 0;
  for (let i = 0; i < image.data.length; i += 4) mean += image.data[i];
  if (mean / (image.data.length / 4) > 127) {
    for (let i = 0; i < image.data.length; i += 4) {
      for (let c = 0; c < 3; c++) image.data[i + c] = 255 - image.data[i + c];
    }
    ctx.putImageData(image, 0, 0);
  }
  return cropped;
}

/** The square ``canvas`` as ``model``'s input (an AlaeModel), [1, R, R, C] in [0, 1]. */
export function canvasInput(tf, canvas, model) {
  const size = canvas.width;
  const source = model.dataset === 'mnist' ? mnistFramed(canvas) : canvas;
  const frame = model.frame;
  return tf.tidy(() => {
    const x = tf.browser.fromPixels(source, model.channels === 1 ? 1 : 3).toFloat().div(255)
        .expandDims(0);
    return model.fromFrame(size % frame === 0 ?
      tf.avgPool(x, size / frame, size / frame, 'valid') :
      tf.image.resizeBilinear(x, [frame, frame], false, true));
  });
}

/** Draws images [N, H, W, C] in [0, 1] side by side, scaled to fill ``canvas``. */
export async function showImages(tf, images, canvas) {
  const row = tf.tidy(() => {
    const x = images.rank === 3 ? images.expandDims(0) : images;
    return tf.concat(tf.unstack(x), 1).clipByValue(0, 1);
  });
  const tile = document.createElement('canvas');
  await tf.browser.toPixels(row, tile);
  row.dispose();
  const ctx = canvas.getContext('2d');
  ctx.imageSmoothingEnabled = false;
  ctx.drawImage(tile, 0, 0, canvas.width, canvas.height);
}
