"""Tests for the billing module."""
