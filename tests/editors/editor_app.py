"""The app both editor tests run under `hotd run` and edit: a loop printing greeting(), and a
dataclass whose new field is the rude edit."""

APP = """\
import time
from dataclasses import dataclass


@dataclass
class Point:
    x: int = 0


def greeting():
    return "hello"


if __name__ == "__main__":
    while True:
        print(greeting(), flush=True)
        time.sleep(0.05)
"""
