"""Forms of the dashboard pages: run filters, reruns, run-now and notes."""

from __future__ import annotations

import uuid
from datetime import datetime, time
from typing import Any

from django import forms
from django.db.models import Q, QuerySet
from django.utils import timezone

from runs.models import NOTE_MAX_CHARS, Environment, Note, Run, RunStatus, Suite, Verdict
from runs.notes import MAX_NOTES_PER_RUN, one_newline

SORTS = {
    "-created": "Newest first",
    "created": "Oldest first",
    "-duration_s": "Slowest first",
    "duration_s": "Fastest first",
    "-mrr_at_risk": "Most MRR at risk",
    "passed": "Fewest passed",
}


class RunFilterForm(forms.Form):
    environment = forms.ModelChoiceField(Environment.objects.all(), required=False, to_field_name="name")
    suite = forms.ModelChoiceField(Suite.objects.all(), required=False, to_field_name="name")
    verdict = forms.ChoiceField(choices=[("", "Any verdict"), *Verdict.choices], required=False)
    status = forms.ChoiceField(choices=[("", "Any status"), *RunStatus.choices], required=False)
    trigger = forms.ChoiceField(choices=[("", "Any trigger"), *Run.Trigger.choices], required=False)
    date_from = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}), label="From")
    date_to = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}), label="To")
    q = forms.CharField(
        required=False,
        max_length=200,
        label="Search",
        widget=forms.TextInput(attrs={"placeholder": "run #, message, URL"}),
    )
    sort = forms.ChoiceField(choices=list(SORTS.items()), required=False)

    def clean(self) -> dict[str, Any]:
        super().clean()
        data = self.cleaned_data
        if data.get("date_from") and data.get("date_to") and data["date_from"] > data["date_to"]:
            raise forms.ValidationError("The 'From' date is after the 'To' date.")
        return data

    def apply(self, runs: QuerySet[Run]) -> QuerySet[Run]:
        """Filter and sort ``runs`` by the valid fields (invalid ones are shown as errors, not applied)."""
        data = self.cleaned_data if self.is_valid() else {}
        for field in ("environment", "suite", "verdict", "status", "trigger"):
            if data.get(field):
                runs = runs.filter(**{field: data[field]})
        tz = timezone.get_current_timezone()
        if data.get("date_from"):
            runs = runs.filter(created__gte=datetime.combine(data["date_from"], time.min, tz))
        if data.get("date_to"):
            runs = runs.filter(created__lte=datetime.combine(data["date_to"], time.max, tz))
        if query := (data.get("q") or "").strip():
            match = Q(status_message__icontains=query) | Q(base_url__icontains=query)
            if query.lstrip("#").isdigit():
                match |= Q(pk=int(query.lstrip("#")))
            runs = runs.filter(match)
        return runs.order_by(data.get("sort") or "-created", "-pk")


def new_request_key() -> str:
    return uuid.uuid4().hex


class RerunForm(forms.Form):
    scope = forms.ChoiceField(choices=Run.Scope.choices)
    category = forms.IntegerField(required=False)
    test_case = forms.IntegerField(required=False)
    request_key = forms.CharField(max_length=64, required=False)

    def clean(self) -> dict[str, Any]:
        super().clean()
        data = self.cleaned_data
        if data.get("scope") == Run.Scope.CATEGORY and not data.get("category"):
            raise forms.ValidationError("Choose the category to rerun.")
        if data.get("scope") == Run.Scope.TEST and not data.get("test_case"):
            raise forms.ValidationError("Choose the check to rerun.")
        return data


class RunNowForm(forms.Form):
    environment = forms.ModelChoiceField(Environment.objects.all())
    suite = forms.ModelChoiceField(Suite.objects.all())  # runs.services.ensure_runnable says which may run
    request_key = forms.CharField(max_length=64, required=False)


def note_draft_key(run_id: int) -> str:
    """Where a refused note's text waits in the session (the database's, Django's default)
    for the run page's form."""
    return f"note-draft-{run_id}"


class NoteText(forms.CharField):
    """A note's text with a line break counted once, as the textarea's maxlength counts it."""

    def to_python(self, value: object) -> str:
        return one_newline(super().to_python(value) or "")


class NoteForm(forms.ModelForm):
    """A note's text; its limits (``runs.notes``) are said beside the box, and the browser
    stops typing at the length limit (the textarea's maxlength)."""

    max_notes = MAX_NOTES_PER_RUN

    class Meta:
        model = Note
        fields = ["body"]
        field_classes = {"body": NoteText}
        widgets = {
            "body": forms.Textarea(attrs={"rows": 8, "placeholder": "## Root cause\n\n## Five whys\n\n## Next steps"})
        }
        labels = {"body": "Note (Markdown)"}
        help_texts = {"body": f"At most {NOTE_MAX_CHARS:,} characters; a run takes up to {MAX_NOTES_PER_RUN} notes."}

    def error_text(self) -> str:
        """What was wrong with the text, in a sentence for a flash message."""
        return " ".join(str(error) for error in self.errors.get("body", [])) or "A note needs some text."
