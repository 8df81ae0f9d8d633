# Attack: a module named like one the harness or Python loads (torch), to run code before or instead of it.
import os

print("SHADOW EXECUTED torch")
os._exit(3)
