"""The token-mode benchmark's pieces: the test server's scripted policy and the client worker."""
