"""WebSocket probe kinds: handshake, message send, agent event stream, fan-out."""
