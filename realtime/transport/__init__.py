"""Sockets and the wire schema shared by every process and consumer."""
