"""synpref: preference-data curation and Bradley-Terry reward models on Ray."""

__version__ = "0.1.0"
