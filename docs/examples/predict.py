"""Try the digit service from Python with requests. Gets a handwritten 7 from MNIST's test set,
then asks /predict about it twice: as a PNG file and as JSON numbers.

    python3 predict.py      API_URL: the service (default http://127.0.0.1:3000)
                            API_KEY: sent when set (PREDICT_REQUIRES_KEY=true asks for it)
"""

import os
import sys

import requests

API_URL = os.environ.get("API_URL", "http://127.0.0.1:3000")
session = requests.Session()
if os.environ.get("API_KEY"):
    session.headers["Authorization"] = "Bearer " + os.environ["API_KEY"]


def call(method, path, **kwargs):
    """The answer, or exit with the API's own message: {"error": {"code", "message"}}."""
    response = session.request(method, API_URL + path, timeout=30, **kwargs)
    if not response.ok:
        sys.exit(f"{method} {path}: {response.status_code} {response.text}")
    return response


def show(how, answer):
    best = answer["predictions"][0]
    print(f"{how}: {best['class']} ({best['confidence'] * 100:.1f} %), model version {answer['modelVersion']}")


# A 28x28 PNG (?index=N for another 7, ?zoom=10 for a bigger one to look at)
png = call("GET", "/samples/7.png").content
show("image/png", call("POST", "/predict", data=png, headers={"Content-Type": "image/png"}).json())

# The same digit as a ready /predict body: {"image": 28 rows of 28 numbers 0-255, "scale": "byte"}
pixels = call("GET", "/samples/7.json").json()
show("json", call("POST", "/predict", json=pixels).json())
