"""A tiny long-running app for the hotd demo: a shop that keeps a cart in memory and prints its total.

Run it with `hotd run examples/shop/shop.py`, then edit `price_of` or `describe` and save: the running
process picks the new code up at once, and the cart (its state) is kept.
"""
import os
import sys
import time

PRICES = {"apple": 0.50, "bread": 2.20, "coffee": 4.00}


def price_of(item, quantity):
    return PRICES[item] * quantity


def describe(cart):
    total = sum(price_of(item, quantity) for item, quantity in cart.items())
    return "items in cart: %d, total %.2f" % (sum(cart.values()), total)


def main(ticks):
    cart = {}
    for tick in range(1, ticks + 1):
        item = sorted(PRICES)[tick % len(PRICES)]
        cart[item] = cart.get(item, 0) + 1
        print("[pid %d] tick %2d  %s" % (os.getpid(), tick, describe(cart)), flush=True)
        time.sleep(0.25)


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 1000)
