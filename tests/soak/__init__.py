"""The kill -9 soak: a relay child process SIGKILLed at random under scripted load."""
