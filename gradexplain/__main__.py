"""``python -m gradexplain``: the same entry point as the installed ``gradexplain`` script."""
from .cli import main

main()
