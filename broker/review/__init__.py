"""Access review and licence reclaim: LearnUpon users compared with the upstream directories."""
