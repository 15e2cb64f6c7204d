"""HTTP clients of the outside services (Microsoft Graph, LearnUpon) on one retry core (`http.py`)."""
