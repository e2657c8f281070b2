// Try the digit service from Node.js (18 or later: fetch is built in). Gets a handwritten 7 from
// MNIST's test set, then asks /predict about it twice: as a PNG file and as JSON numbers.
//   node predict.mjs        API_URL: the service (default http://127.0.0.1:3000)
//                           API_KEY: sent when set (PREDICT_REQUIRES_KEY=true asks for it)
const apiUrl = process.env.API_URL ?? 'http://127.0.0.1:3000';
const auth = process.env.API_KEY ? { authorization: `Bearer ${process.env.API_KEY}` } : {};

/** The answer, or an error with the API's own message: { error: { code, message } }. */
async function call(path, { method = 'GET', headers = {}, body } = {}) {
  const response = await fetch(apiUrl + path, { method, headers: { ...auth, ...headers }, body });
  if (!response.ok) throw new Error(`${method} ${path}: ${response.status} ${await response.text()}`);
  return response;
}

function show(how, answer) {
  const { class: digit, confidence } = answer.predictions[0];
  console.log(`${how}: ${digit} (${(confidence * 100).toFixed(1)} %), model version ${answer.modelVersion}`);
}

// A 28x28 PNG (?index=N for another 7, ?zoom=10 for a bigger one to look at)
const png = await (await call('/samples/7.png')).arrayBuffer();
const fromPng = await call('/predict', {
  method: 'POST',
  headers: { 'content-type': 'image/png' },
  body: png,
});
show('image/png', await fromPng.json());

// The same digit as a ready /predict body: { image: 28 rows of 28 numbers 0-255, scale: 'byte' }
const pixels = await (await call('/samples/7.json')).json();
const fromJson = await call('/predict', {
  method: 'POST',
  headers: { 'content-type': 'application/json' },
  body: JSON.stringify(pixels),
});
show('json', await fromJson.json());
