"""Speech → expressions: decoding any audio file, speaker-normalised log-mel features, and the
subject's audio-to-expression model (``RUN/audio_model.npz``) that drives the avatar from a voice."""
