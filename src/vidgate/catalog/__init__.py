"""The model catalog: models, their prices and limits, and the vendor channels behind them."""
