"""Train a model from Python with requests: start a job, follow it until it ends, print the result.

    python3 train.py                                      the seed recipe (under a minute on 2 cores)
    python3 train.py '{"epochs": 2, "trainSize": 10000}'  any POST /jobs parameters, as JSON

    API_URL: the service (default http://127.0.0.1:3000)
    API_KEY: sent when set (starting a job needs it when the service has one)
"""

import json
import os
import sys
import time

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


params = json.loads(sys.argv[1]) if len(sys.argv) > 1 else {}
queued = call("POST", "/jobs", json=params)  # 202, Location: /jobs/<id>
print(f"job {queued.json()['id']} queued")

# Polled once a second; GET /jobs/<id>/events streams the same as Server-Sent Events.
said = None
while True:
    job = call("GET", queued.headers["Location"]).json()
    if job["state"] in ("completed", "failed", "cancelled"):
        break
    progress = job["progress"]
    line = job["state"]
    if progress:
        line += (
            f": epoch {progress['epoch']}/{progress['epochs']}, {progress['percent']:.0f} % done,"
            f" training accuracy {progress['accuracy'] * 100:.1f} %"
        )
    if line != said:
        print(line)
        said = line
    time.sleep(1)

if job["state"] != "completed":
    sys.exit(f"job {job['id']} {job['state']}: {job['error']}")
result = job["result"]
print(f"model version {result['modelVersion']}: test accuracy {result['metrics']['accuracy']['test'] * 100:.2f} %")
