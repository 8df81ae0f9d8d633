# Attack: a module named like one the harness or Python loads (usercustomize), to run code before or instead of it.
import os

print("SHADOW EXECUTED usercustomize")
os._exit(3)
