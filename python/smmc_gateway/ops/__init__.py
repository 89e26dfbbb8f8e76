"""Operations layer of the daemon: configuration, logging, metrics, systemd notify."""
