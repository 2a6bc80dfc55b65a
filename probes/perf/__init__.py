"""Performance probe: the golden path's timing targets, measured from real traffic."""
