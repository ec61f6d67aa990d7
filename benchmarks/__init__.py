"""`make bench`: cold start, warm overhead, HTTP relay, memory and package size against budgets."""
