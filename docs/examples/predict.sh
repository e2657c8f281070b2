#!/usr/bin/env bash
# Try the digit service with curl. Saves a handwritten 7 from MNIST's test set as digit.png, then
# asks /predict about it twice: as a PNG file and as JSON numbers. Prints the answers as they come.
#   bash predict.sh         API_URL: the service (default http://127.0.0.1:3000)
#                           API_KEY: sent when set (PREDICT_REQUIRES_KEY=true asks for it)
set -euo pipefail
url=${API_URL:-http://127.0.0.1:3000}
auth=()
if [ -n "${API_KEY:-}" ]; then auth=(-H "Authorization: Bearer $API_KEY"); fi

# A 28x28 PNG (?index=N for another 7, ?zoom=10 for a bigger one to look at)
curl -sS --fail-with-body -o digit.png "$url/samples/7.png"
curl -sS --fail-with-body "${auth[@]}" -H 'content-type: image/png' --data-binary @digit.png \
  -w '\n' "$url/predict"

# The same digit as a ready /predict body: {"image": 28 rows of 28 numbers 0-255, "scale": "byte"}
curl -sS --fail-with-body "$url/samples/7.json" |
  curl -sS --fail-with-body "${auth[@]}" -H 'content-type: application/json' --data-binary @- \
    -w '\n' "$url/predict"
