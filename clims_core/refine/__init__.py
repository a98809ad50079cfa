"""Refinement of CAMs into pseudo masks: denseCRF (IR labels, CRF masks), IRNet's pair affinities and random walk."""
