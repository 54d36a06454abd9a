"""Shop module."""
import math
from dataclasses import dataclass

TAX = 0.25

@dataclass
class Item:
    name: str
    price: float = 0.0
    qty: int = 1

    def total(self):
        return self.price * (1 + TAX) * self.qty

class Cart:
    def __init__(self):
        self.items = []

    @property
    def size(self):
        return len(self.items)

    @size.setter
    def size(self, v):
        raise AttributeError("read only")

    # a comment
    def add(self, item):
        self.items.append(item)

def price(x):
    def inner(y):
        return y * 3
    return inner(x)

async def gen():
    yield 1

if __name__ == "__main__":
    print(price(4))
