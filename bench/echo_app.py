"""The baseline: a bare Flask app that parses the JSON body and echoes it, served like hrdd.

Usage: python bench/echo_app.py PORT [THREADS] [WORKERS]
"""

from flask import Flask, jsonify, request

app = Flask(__name__)


@app.post("/echo")
def echo():
    """Parse and return the JSON body."""
    return jsonify(request.get_json()), 201


if __name__ == "__main__":
    import logging
    import sys

    from hrdd.serving import serve  # the same process model as `hrdd serve --workers N`
    logging.getLogger("waitress.queue").setLevel(logging.ERROR)  # same as hrdd serve
    serve(app, host="127.0.0.1", port=int(sys.argv[1]), threads=int(sys.argv[2]) if len(sys.argv) > 2 else 8,
          workers=int(sys.argv[3]) if len(sys.argv) > 3 else 1, ident="echo")
