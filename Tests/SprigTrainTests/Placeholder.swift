// SprigTrain tests live beside this file.
