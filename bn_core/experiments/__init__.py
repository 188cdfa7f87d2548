"""One module per page: a frozen Config in, DataFrames out; these are what pages cache."""
