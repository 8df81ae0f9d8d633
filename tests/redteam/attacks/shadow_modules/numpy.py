# Attack: a module named like one the harness or Python loads (numpy), to run code before or instead of it.
import os

print("SHADOW EXECUTED numpy")
os._exit(3)
