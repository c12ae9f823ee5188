"""Small servers on 127.0.0.1 that the engine tests talk to."""
