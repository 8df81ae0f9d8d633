# Attack: a module named like one the harness or Python loads (wire), to run code before or instead of it.
import os

print("SHADOW EXECUTED wire")
os._exit(3)
