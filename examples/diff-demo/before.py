"""Shop module."""
import math
from dataclasses import dataclass

TAX = 0.2

@dataclass
class Item:
    name: str
    price: float = 0.0

    def total(self):
        return self.price * (1 + TAX)

class Cart:
    def __init__(self):
        self.items = []

    @property
    def size(self):
        return len(self.items)

    @size.setter
    def size(self, v):
        raise AttributeError

    def add(self, item):
        self.items.append(item)

def price(x):
    def inner(y):
        return y * 2
    return inner(x)

def gen():
    yield 1

if __name__ == "__main__":
    print(price(3))
