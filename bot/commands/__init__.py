"""One command grammar for every platform: text -> typed command -> reply."""
