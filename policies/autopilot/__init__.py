"""The autopilot: automatic decisions (best_recent, health rules, retraining, retention) on a schedule."""
