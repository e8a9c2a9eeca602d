"""SpanLab core: data, storage, training and inference. No Streamlit here."""
