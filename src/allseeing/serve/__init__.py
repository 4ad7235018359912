"""The web demo (``allseeing demo``): grounded relation chat over an image, served on 127.0.0.1 by default."""
