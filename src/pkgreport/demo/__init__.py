"""The demo and benchmark generator (`pkgreport sample-data`): export formats, bulk data, planted
scenarios and writing, one module each."""
