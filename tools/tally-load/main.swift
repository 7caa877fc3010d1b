print("tally-load")
