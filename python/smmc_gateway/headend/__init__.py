"""The head-end: fleet registry and state, scheduler, command dispatch, the daemon and the demo."""
